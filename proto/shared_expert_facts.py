"""Facts for proto.shared_expert: which model files read SGLANG_SHARED_EXPERT_TP1 in each release,
where each adds the replicated shared output and where its block sums, with file:line (paths inside
the wheel), re-read from the 17 cached wheels by tests/proto/test_shared_expert.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .eras import RELEASE_ERA, Era, Fact


class Adds(StrEnum):
    """Where a block adds the replicated output r (proto.shared_expert's docstring)."""
    BEFORE_GUARD = "r added before the block's guarded all-reduce (0.5.10.post1; replicated only under Q)"
    EVERY_RANK = "every rank adds it after the block's (skippable) TP all-reduce"
    HELPER = "should_add_replicated_moe_output, after the block's own sum"
    TO_PARTIAL = "adds_replicated_output_to_partial; the stage boundary sums"


M = "sglang/srt/models/"
READ_DSV2 = "or envs.SGLANG_SHARED_EXPERT_TP1.get()"
READ_LAGUNA = "self._shared_expert_tp1 = envs.SGLANG_SHARED_EXPERT_TP1.get()"
ADD_EVERY_DSV2 = "if shared_output is not None and self._shared_expert_tp1:"
ADD_EVERY_LAGUNA = "if self._shared_expert_tp1:"
ADD_HELPER_DSV2 = "and should_add_replicated_moe_output()"
ADD_HELPER_LAGUNA = "if self._shared_expert_tp1 and should_add_replicated_moe_output():"
ADD_PARTIAL_DSV2 = "and self._adds_replicated_output()"
ADD_PARTIAL_LAGUNA = "if self._shared_expert_tp1 and adds_replicated_output_to_partial():"

# (release, model file, line reading the switch, line adding r, line of the block's own sum (0:
# none), the add line's text); deepseek_v2's are forward_normal's (forward_normal_dual_stream
# does the same).
_ROWS = (
    ("0.5.12", "deepseek_v2", 606, 921, 918, ADD_EVERY_DSV2),
    ("0.5.12.post1", "deepseek_v2", 606, 921, 918, ADD_EVERY_DSV2),
    ("0.5.13", "deepseek_v2", 694, 1044, 1041, ADD_EVERY_DSV2),
    ("0.5.13.post1", "deepseek_v2", 694, 1044, 1041, ADD_EVERY_DSV2),
    ("0.5.14", "deepseek_v2", 703, 1076, 1073, ADD_EVERY_DSV2),
    ("0.5.15", "deepseek_v2", 710, 1144, 1141, ADD_EVERY_DSV2),
    ("0.5.15", "laguna", 191, 242, 241, ADD_EVERY_LAGUNA),
    ("0.5.15.post1", "deepseek_v2", 718, 1152, 1149, ADD_EVERY_DSV2),
    ("0.5.15.post1", "laguna", 191, 242, 241, ADD_EVERY_LAGUNA),
    ("0.5.16", "deepseek_v2", 723, 1142, 1139, ADD_EVERY_DSV2),
    ("0.5.16", "laguna", 184, 231, 230, ADD_EVERY_LAGUNA),
    ("0.5.17", "deepseek_v2", 735, 1189, 1186, ADD_EVERY_DSV2),
    ("0.5.17", "laguna", 184, 231, 230, ADD_EVERY_LAGUNA),
    ("0.5.18", "deepseek_v2", 738, 1178, 1175, ADD_EVERY_DSV2),
    ("0.5.18", "laguna", 185, 232, 231, ADD_EVERY_LAGUNA),
    ("0.5.19", "deepseek_v2", 750, 1202, 1199, ADD_EVERY_DSV2),
    ("0.5.19", "laguna", 186, 233, 232, ADD_EVERY_LAGUNA),
    ("0.5.20", "deepseek_v2", 725, 1178, 1175, ADD_EVERY_DSV2),
    ("0.5.20", "laguna", 186, 233, 232, ADD_EVERY_LAGUNA),
    ("0.5.21", "deepseek_v2", 765, 1391, 1385, ADD_HELPER_DSV2),
    ("0.5.21", "laguna", 186, 230, 229, ADD_HELPER_LAGUNA),
    ("0.5.22", "deepseek_v2", 819, 1398, 1392, ADD_PARTIAL_DSV2),
    ("0.5.22", "laguna", 182, 225, 0, ADD_PARTIAL_LAGUNA),
    ("0.5.23", "deepseek_v2", 886, 1458, 1452, ADD_PARTIAL_DSV2),
    ("0.5.23", "laguna", 183, 226, 0, ADD_PARTIAL_LAGUNA),
)
_RULE_OF_ADD = {ADD_EVERY_DSV2: Adds.EVERY_RANK, ADD_EVERY_LAGUNA: Adds.EVERY_RANK,
                ADD_HELPER_DSV2: Adds.HELPER, ADD_HELPER_LAGUNA: Adds.HELPER,
                ADD_PARTIAL_DSV2: Adds.TO_PARTIAL, ADD_PARTIAL_LAGUNA: Adds.TO_PARTIAL}


@dataclass(frozen=True)
class Reader:
    """One model file reading the switch in one release."""
    release: str
    model: str
    reads: Fact
    adds: Fact
    sums: Fact | None
    """The block's own all-reduce (None: the stage boundary sums, 0.5.22+ laguna)."""
    rule: Adds

    @property
    def era(self) -> Era:
        return RELEASE_ERA[self.release]


SUM_TEXT = {("deepseek_v2", Adds.EVERY_RANK): "final_hidden_states = tensor_model_parallel_all_reduce(final_hidden_states)",
            ("laguna", Adds.EVERY_RANK): "final = tensor_model_parallel_all_reduce(final)",
            ("laguna", Adds.HELPER): "final = reduce_moe_output(final)"}
"""The block's sum before the add; deepseek_v2 from 0.5.21 (0.5.22+: under reduce_results) calls
post_experts_all_reduce."""


def _reader(release: str, model: str, read: int, add: int, summed: int, text: str) -> Reader:
    path, rule_ = M + model + ".py", _RULE_OF_ADD[text]
    read_text = READ_DSV2 if model == "deepseek_v2" else READ_LAGUNA
    sum_text = SUM_TEXT.get((model, rule_), "final_hidden_states = post_experts_all_reduce(final_hidden_states)")
    sums = Fact(path, summed, sum_text, "the block's own all-reduce, before the add") if summed else None
    return Reader(release, model, Fact(path, read, read_text, "reads SGLANG_SHARED_EXPERT_TP1"),
                  Fact(path, add, text, "adds the replicated shared output"), sums, rule_)


READERS = tuple(_reader(*row) for row in _ROWS)
"""Every (release, model file) reading the switch; 0.5.10.post1 and 0.5.11 have none (no
SGLANG_SHARED_EXPERT_TP1 in their environ.py)."""

HOSTS = (
    ("deepseek_v4", "0.5.12", "self.mlp = deepseek_v2.DeepseekV2MoE(", True),
    ("hunyuan_v4", "0.5.20", "self.mlp = DeepseekV2MoE(", False),
    ("hunyuan_v4_nextn", "0.5.20", "self.mlp = DeepseekV2MoE(", False),
)
"""Model files that build deepseek_v2's block (from which release; the line's text; its
reduce_results from 0.5.22, the first release where the block reads it: deepseek_v4 keeps the
default True, 0.5.23 deepseek_v4.py:3155; hunyuan_v4 passes False, 0.5.23 hunyuan_v4.py:625,
hunyuan_v4_nextn.py:64). Their own files do not read the switch (deepseek_v4.py names it in a
comment only, 0.5.20 deepseek_v4.py:322)."""


ARCHITECTURES = {
    "deepseek_v2": ("DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM"),
    "laguna": ("LagunaForCausalLM",),
}
"""EntryClass of each reader (0.5.12 deepseek_v2.py:2582, 0.5.15 laguna.py:856; the same in 0.5.23)."""
