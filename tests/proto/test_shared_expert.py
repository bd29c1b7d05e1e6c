"""proto.shared_expert: the readers of SGLANG_SHARED_EXPERT_TP1 re-read from every cached wheel,
and the counts on concrete configurations against what each release's code does.

Wheels are read from ~/.cache/sumonce/sglang/ (no download); a missing wheel fails.
"""
import re
import zipfile
from pathlib import Path

import pytest

from sumonce.proto import shared_expert as se
from sumonce.proto.config import DpPaddingMode, ForwardState, MoeA2ABackend, MoeRunnerBackend, Quantization, ServerConfig
from sumonce.proto.eras import RELEASE_ERA, Era
from sumonce.proto.flags import parse_flags, to_flags

CACHE = Path.home() / ".cache" / "sumonce" / "sglang"
SWITCH = re.compile(r"SGLANG_SHARED_EXPERT_TP1\.get\(\)")


def wheel(release: str) -> zipfile.ZipFile:
    wheels = sorted(CACHE.glob(f"sglang-{release}-*.whl"))
    assert wheels, f"no cached wheel for sglang {release} under {CACHE}"
    return zipfile.ZipFile(wheels[0])


def model_files_reading_the_switch(release: str) -> set[str]:
    """Model files whose code (not a comment) reads the switch's accessor."""
    out = set()
    with wheel(release) as z:
        for name in z.namelist():
            if name.startswith("sglang/srt/models/") and name.endswith(".py"):
                code = [ln for ln in z.read(name).decode().splitlines() if not ln.lstrip().startswith("#")]
                if any(SWITCH.search(ln) for ln in code):
                    out.add(name.removeprefix("sglang/srt/models/").removesuffix(".py"))
    return out


@pytest.mark.parametrize("release", sorted(RELEASE_ERA))
def test_readers_are_exactly_the_wheels(release):
    recorded = {r.model for r in se.READERS if r.release == release}
    assert recorded == model_files_reading_the_switch(release)


@pytest.mark.parametrize("reader", se.READERS, ids=lambda r: f"{r.model}@{r.release}")
def test_every_reader_fact_is_on_its_line(reader):
    with wheel(reader.release) as z:
        lines = z.read(reader.reads.file).decode().splitlines()
    for f in (reader.reads, reader.adds) + ((reader.sums,) if reader.sums else ()):
        assert f.text in lines[f.line - 1], f"{reader.release} {f.file}:{f.line} does not say {f.text!r}"
    if reader.sums:  # every release adds r after the block's own sum, in the same forward
        assert 0 < reader.adds.line - reader.sums.line < 8
    else:
        assert reader.rule == se.Adds.TO_PARTIAL and reader.model == "laguna"


@pytest.mark.parametrize("model, since, text, reduce_results", se.HOSTS)
def test_hosts_build_deepseek_v2s_block_and_do_not_read_the_switch(model, since, text, reduce_results):
    for release in (since, "0.5.23"):
        with wheel(release) as z:
            src = z.read(f"sglang/srt/models/{model}.py").decode()
        assert text in src and model not in model_files_reading_the_switch(release)
        block = src[src.index(text):src.index(text) + 900]
        if release == "0.5.23":
            assert ("reduce_results=False" in block) == (not reduce_results)


def test_eras_facts_in_docs_corrected():
    """docs/ERAS.md section 2 says the switch is read by "deepseek_v2 and laguna in 0.5.23 (0.5.12 -
    0.5.14: deepseek_v2; 0.5.15 - 0.5.22 also deepseek_v4)", and docs/eras.json lists deepseek_v4
    among the readers of 0.5.15 - 0.5.22: the wheels say laguna reads it from 0.5.15, and
    deepseek_v4.py only names it in a comment (its block is deepseek_v2's, which reads it)."""
    import json
    eras = json.loads((Path(__file__).parents[2] / "docs" / "eras.json").read_text())["releases"]
    for release, facts in eras.items():
        recorded = {r.model for r in se.READERS if r.release == release}
        assert set(facts["shared_expert_tp1_readers"]) - {"deepseek_v4"} == recorded
    assert {r.release for r in se.READERS if r.model == "laguna"} >= {"0.5.15", "0.5.20", "0.5.22"}
    assert "deepseek_v4" in eras["0.5.20"]["shared_expert_tp1_readers"]
    assert "deepseek_v4" not in model_files_reading_the_switch("0.5.20")
    with wheel("0.5.20") as z:
        line = z.read("sglang/srt/models/deepseek_v4.py").decode().splitlines()[321]
    assert line.lstrip().startswith("#") and "SGLANG_SHARED_EXPERT_TP1" in line


DSV3 = dict(architecture="DeepseekV3ForCausalLM", shared_expert_tp1=True)
S = ForwardState(num_tokens=16)


def counts(era, c, s=S, F=False, R=False, reduce_results=False):
    how = se.rule(era, reduce_results)
    return [se.replicated_count(era, how, c, s, F, R, k) for k in (0, 1)]


def test_fused_next_layer_counts_it_tp_times_before_0_5_21():
    c = ServerConfig(tp_size=8, **DSV3)  # F auto-enabled for DeepSeek V3 on SM90
    for era in (Era.V0_5_11, Era.V0_5_15, Era.V0_5_16, Era.V0_5_17, Era.V0_5_20):
        assert counts(era, c) == [8, 8]
    assert counts(Era.V0_5_21, c, F=True) == [1, 1]
    assert counts(Era.V0_5_23, c) == [1, 1]


def test_reduce_scatterv_counts_it_ep_times_issue_31475():
    c = ServerConfig(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, **DSV3)
    assert counts(Era.V0_5_20, c) == [4, 4]
    assert counts(Era.V0_5_21, c, R=True) == [1, 1]


def test_unfused_plain_tp_counts_it_once_in_every_era():
    c = ServerConfig(tp_size=4, enforce_disable_flashinfer_allreduce_fusion=True, **DSV3)
    for era in (Era.V0_5_11, Era.V0_5_20, Era.V0_5_21, Era.V0_5_23):
        assert counts(era, c) == [1, 1]
    assert se.counted_once(Era.V0_5_20, se.Adds.EVERY_RANK, c, S, False, False)


def test_complete_output_every_rank_adds():
    c = ServerConfig(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, quantization=Quantization.MODELOPT_FP4,
                     moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS, **DSV3)
    for era in (Era.V0_5_20, Era.V0_5_21, Era.V0_5_23):
        assert counts(era, c) == [1, 1]


def test_boundary_rank_zero_only_while_a_sum_is_owed():
    c = ServerConfig(tp_size=4, **DSV3)
    assert counts(Era.V0_5_23, c) == [1, 1]
    deepep = ServerConfig(tp_size=4, ep_size=4, moe_a2a_backend=MoeA2ABackend.DEEPEP, architecture="LagunaForCausalLM",
                          shared_expert_tp1=True)
    assert counts(Era.V0_5_23, deepep) == [1, 0]


def test_max_len_padding_reduce_scatter_before_0_5_21():
    c = ServerConfig(tp_size=4, dp_size=2, ep_size=2, enable_dp_attention=True, **DSV3)
    s = ForwardState(num_tokens=16, dp_padding_mode=DpPaddingMode.MAX_LEN)
    assert counts(Era.V0_5_17, c, s) == [4, 4]


def test_the_switch_as_a_flag_round_trips():
    c, _, _ = parse_flags(["--tp", "2", "--shared-expert-tp1"])
    assert c.shared_expert_tp1 and "--shared-expert-tp1" in to_flags(c)
    assert se.readers(Era.V0_5_10) == () and se.readers(Era.V0_5_21) == ("deepseek_v2", "laguna")


Q_LINES = {"0.5.10.post1": 465, "0.5.12": 605, "0.5.23": 885}
BEFORE_GUARD_LINES = {"0.5.10.post1": 695, "0.5.11": 747}


@pytest.mark.parametrize("release", sorted(Q_LINES))
def test_q_replicates_deepseek_v2s_shared_expert(release):
    with wheel(release) as z:
        lines = z.read("sglang/srt/models/deepseek_v2.py").decode().splitlines()
    assert "or should_use_flashinfer_cutlass_moe_fp4_allgather()" in lines[Q_LINES[release] - 1]
    if release in BEFORE_GUARD_LINES:
        assert "final_hidden_states += shared_output" in lines[BEFORE_GUARD_LINES[release] - 1]


def test_before_the_helper_q_counts_it_once_and_a_block_sum_would_count_it_tp_times():
    q = ServerConfig(tp_size=4, dp_size=4, ep_size=4, enable_dp_attention=True, quantization=Quantization.MODELOPT_FP4,
                     moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS, architecture="DeepseekV3ForCausalLM")
    assert se.rule(Era.V0_5_10) == se.Adds.BEFORE_GUARD and se.replicated(Era.V0_5_10, "deepseek_v2", q)
    assert counts(Era.V0_5_10, q) == [1, 1]
    plain = ServerConfig(tp_size=4, enforce_disable_flashinfer_allreduce_fusion=True, architecture="DeepseekV3ForCausalLM")
    assert not se.replicated(Era.V0_5_10, "deepseek_v2", ServerConfig(tp_size=4, **DSV3))
    assert counts(Era.V0_5_10, plain) == [4, 4]  # what adding before the block's sum would do


def small_configs():
    """Valid configurations with the switch on, tp 1 - 4, every ep, DP attention off/on, fusion
    off/on, each a2a backend laguna may run in scope, plus the FP4 all-gather."""
    from sumonce.proto.validation import violations
    for tp in (1, 2, 4):
        for ep in [d for d in (1, 2, 4) if tp % d == 0]:
            for dp in [0] + [d for d in (2, 4) if tp % d == 0]:
                for fusion in (False, True):
                    for a2a in (MoeA2ABackend.NONE, MoeA2ABackend.FLASHINFER, MoeA2ABackend.PPLX):
                        for arch in ("DeepseekV3ForCausalLM", "LagunaForCausalLM"):
                            c = ServerConfig(tp_size=tp, ep_size=tp if a2a != MoeA2ABackend.NONE else ep,
                                             dp_size=max(dp, 1), enable_dp_attention=dp > 0, moe_a2a_backend=a2a,
                                             enforce_disable_flashinfer_allreduce_fusion=not fusion,
                                             enable_flashinfer_allreduce_fusion=fusion, architecture=arch,
                                             moe_runner_backend=MoeRunnerBackend.FLASHINFER_CUTLASS
                                             if a2a == MoeA2ABackend.FLASHINFER else MoeRunnerBackend.AUTO,
                                             quantization=Quantization.MODELOPT_FP4
                                             if a2a == MoeA2ABackend.FLASHINFER else Quantization.NONE,
                                             shared_expert_tp1=True)
                            if not violations(c):
                                yield c


STATES = (ForwardState(num_tokens=5), ForwardState(num_tokens=5, dp_padding_mode=DpPaddingMode.MAX_LEN),
          ForwardState(num_tokens=5, next_norm_fused=False), ForwardState(num_tokens=5, is_last_layer=True))


@pytest.mark.parametrize("era", (Era.V0_5_21, Era.V0_5_23))
def test_fixed_eras_count_once_on_every_small_configuration(era):
    """The concrete check beside spec's proof (a lift bug would show as a disagreement)."""
    from sumonce.proto.eras import accepts
    seen = 0
    for c in small_configs():
        for model in se.ARCHITECTURES:
            if not (accepts(era, c) and se.in_scope(era, model, c)):
                continue
            for s in STATES:
                for F in (False, True):
                    for R in (False, True):
                        for rr in (False, True) if model == "deepseek_v2" else (False,):
                            assert se.counted_once(era, se.rule(era, rr), c, s, F, R), (model, c, s, F, R)
                            seen += 1
    assert seen > 100
