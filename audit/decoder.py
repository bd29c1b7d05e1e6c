"""What a model file's decoder does around its MoE block (proto.sites.Decoder), read from source:
does it own a LayerCommunicator, may that reduce-scatter, does it ask for F and pass F and R into
the block, does it mark its output for the next layer's fused all-reduce, does it gather the DP
group's tokens for DP attention (a LayerCommunicator's prepare_mlp does; else a dp_gather call, or the
0.5.22+ stage declarations, whose layer boundary gathers).
"""
from __future__ import annotations

import ast

from sumonce.proto.sites import BlockFlag, Decoder

from .extract import F_NAME, HELPER_NAME, R_NAME, call_name, walk


CONTEXT_KEYWORDS = {F_NAME: "fuse_mlp_allreduce", R_NAME: "mlp_reduce_scatter"}
"""0.5.16+: a decoder publishes F and R as get_forward().scoped(fuse_mlp_allreduce=..., mlp_reduce_scatter=...)."""


def _passes(call: ast.Call, name: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name or (k.arg == CONTEXT_KEYWORDS.get(name) and call_name(call) == "scoped"):
            return k.value
    return next((a for a in call.args if isinstance(a, ast.Name) and a.id == name), None)


def _decoder_classes(tree: ast.Module, lines: list[str] | None) -> list[ast.ClassDef]:
    """Classes that own a LayerCommunicator, are named as decoder layers, or all-reduce the output
    of a MoE block they hold (audit/moe_flow.py: a parallel block's decoder, whatever its name);
    with the file's lines, a class whose text never names LayerCommunicator is walked only if it
    is one of the others."""
    from .moe_flow import block_classes, block_sum_lines
    out, blocks = [], None
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        named = "DecoderLayer" in cls.name
        if not named:
            blocks = block_classes(tree, None if lines is None else "\n".join(lines)) if blocks is None else blocks
            named = bool(blocks) and bool(block_sum_lines(cls, blocks, tree))
        if lines is not None and not named and \
                not any("LayerCommunicator" in ln for ln in lines[cls.lineno - 1:cls.end_lineno]):
            continue
        calls = [n for n in walk(cls) if isinstance(n, ast.Call)]
        if named or any(call_name(n) == "LayerCommunicator" for n in calls):
            out.append((cls, calls))
    return out


def decoder_of(tree: ast.Module, text: str | None = None) -> Decoder:
    """The decoder facts; `text` (the file's source) only spares walking what cannot matter."""
    classes = _decoder_classes(tree, text.splitlines() if text is not None else None)
    calls = [n for _cls, cs in classes for n in cs if call_name(n) != HELPER_NAME]
    comms = [c for c in calls if call_name(c) == "LayerCommunicator"]
    allow = any(isinstance(v, ast.Constant) and v.value is True
                for c in comms for v in [_passes(c, "allow_reduce_scatter")] if v is not None)
    F_values = [v for c in calls for v in [_passes(c, F_NAME)] if v is not None]
    if not F_values:
        block_F = BlockFlag.ABSENT
    elif all(isinstance(v, ast.Constant) and v.value is True for v in F_values):
        block_F = BlockFlag.TRUE
    else:
        block_F = BlockFlag.COMPUTED
    marks = any(isinstance(t, ast.Attribute) and t.attr == "_sglang_needs_allreduce_fusion"
                for cls, _cs in classes for n in walk(cls) if isinstance(n, ast.Assign)
                for t in n.targets)
    return Decoder(
        communicator=bool(comms),
        allow_reduce_scatter=allow,
        computes_fusion=any(call_name(c) == "should_fuse_mlp_allreduce_with_next_layer" for c in calls),
        fuses_next_layer=marks,
        block_F=block_F,
        passes_R=any(_passes(c, R_NAME) is not None for c in calls),
        # NOTE: a file with no decoder class says nothing about a gather: assumed (as before issue 11);
        # a file whose layers refuse DP attention when built never runs it (refuses_dp_attention).
        gathers_for_dp_attention=not refuses_dp_attention(tree, text) and (
            not classes or bool(comms) or (text is None or "dp_gather" in text or "_stages" in text) and any(
                call_name(n) in GATHERS for n in walk(tree) if isinstance(n, ast.Call))),
    )


GATHERS = ("dp_gather_partial", "dp_gather_replicate", "dp_gather", "append_stages", "make_stages")
"""Calls that gather the DP group's tokens for the MoE: SGLang's gathers, and the 0.5.22+ stage
declarations (the layer boundary's ops gather: 0.5.23 layers/layer_boundary/ops.py:249-288)."""


def refuses_dp_attention(tree: ast.Module, text: str | None = None) -> int:
    """The line of a statement in some class's __init__ (its own body, not under an `if` or a loop:
    it runs whenever the layer is built) that fails unless DP attention is off, else 0:
    `assert attn_tp_size == tp_size` (attention TP = TP leaves one attention-DP rank; zaya.py:844-849
    at 0.5.14), `assert not is_dp_attention_enabled()`, `assert attn_dp_size == 1`, or the same
    test written as `if <DP attention on>: raise ...`."""
    if text is not None and not any(k in text for k in ("dp_attention", "attn_tp_size", "attn_dp_size",
                                                        "attention_tp_size", "attention_dp_size")):
        return 0
    for cls in _classes(tree.body):
        for fn in (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"):
            for st in fn.body:
                if isinstance(st, ast.Assert) and _dp_attention_off(st.test):
                    return st.lineno
                if isinstance(st, ast.If) and _terminates_by_raise(st.body) and not st.orelse \
                        and _dp_attention_off(st.test, negated=True):
                    return st.lineno
    return 0


def _classes(body: list[ast.stmt]):
    """The classes of a module's body and, within them, their nested classes."""
    for node in body:
        if isinstance(node, ast.ClassDef):
            yield node
            yield from _classes(node.body)


def _last_name(e: ast.expr) -> str:
    """`self.tp_size`, `get_parallel().tp_size`, `tp_size` -> tp_size; a call -> its name."""
    if isinstance(e, ast.Call):
        return _last_name(e.func)
    if isinstance(e, ast.Attribute):
        return e.attr
    return e.id if isinstance(e, ast.Name) else ""


def _dp_attention_off(test: ast.expr, negated: bool = False) -> bool:
    """Does `test` hold exactly when DP attention is off (negated: exactly when it is on)?"""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _dp_attention_off(test.operand, not negated)
    dp_on = {"enable_dp_attention", "is_dp_attention_enabled"}
    if _last_name(test) in dp_on:
        return negated
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        a, b = _last_name(test.left), _last_name(test.comparators[0])
        op = test.ops[0]
        same = {a, b} == {"attn_tp_size", "tp_size"} or {a, b} == {"get_attention_tp_size", "tp_size"}
        one_dp = (a in ("attn_dp_size", "get_attention_dp_size") and isinstance(test.comparators[0], ast.Constant)
                  and test.comparators[0].value == 1)
        if same or one_dp:
            return isinstance(op, ast.Eq) != negated and isinstance(op, (ast.Eq, ast.NotEq))
    return False


def _terminates_by_raise(body: list[ast.stmt]) -> bool:
    return len(body) >= 1 and isinstance(body[-1], ast.Raise)


def architectures_of(tree: ast.Module) -> tuple[str, ...]:
    """The file's EntryClass names (the architectures SGLang serves with it)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "EntryClass"
                                                for t in node.targets):
            v = node.value
            items = v.elts if isinstance(v, (ast.List, ast.Tuple)) else [v]
            return tuple(i.id for i in items if isinstance(i, ast.Name))
    return ()


def mismatches(found: Decoder, catalogued: Decoder) -> list[str]:
    """Facts where the source and proto's catalogue disagree, in words."""
    out = []
    for name in ("communicator", "allow_reduce_scatter", "computes_fusion", "fuses_next_layer",
                 "block_F", "passes_R", "gathers_for_dp_attention"):
        a, b = getattr(found, name), getattr(catalogued, name)
        if a != b:
            out.append(f"{name}: source {a}, proto {b}")
    return out


def boundary_mismatches(text: str, sums_at_boundary: bool) -> list[str]:
    """In the eras whose decoders declare stage boundaries (layers/communicator.py is gone since
    0.5.21, so "has a communicator" is the wrong question): does the file declare them
    (`append_stages(`, the call proto.models_0523.BOUNDARY_LINES cites) where proto's 0.5.23 model
    says its sum is the boundary's, and not where proto says the block sums?"""
    declares = "append_stages(" in text
    if declares == sums_at_boundary:
        return []
    where = lambda b: "the stage boundary" if b else "the MoE block"  # noqa: E731
    return [f"sums at: source {where(declares)}, proto {where(sums_at_boundary)}"]


SUM_CALLS_0521 = {"REDUCE_MOE_OUTPUT": "reduce_moe_output(", "POST_EXPERTS_ALL_REDUCE": "post_experts_all_reduce(",
                  "DECODER": "scoped(fuse_mlp_allreduce=True)"}
"""0.5.21: the call each of proto.models_0521's SumsIn names (step3p5's decoder sums after running
its MoE under F = True)."""


def mismatches_0521(text: str, sums_in: str, declares_boundary: bool) -> list[str]:
    """0.5.21 (proto.models_0521): does the file declare stage boundaries (`make_stages(`) where
    proto says its decoder has one, and does it make the sum call proto says its model file sums with?"""
    out = []
    declares = "make_stages(" in text
    if declares != declares_boundary:
        out.append(f"stage boundaries: source {'declares' if declares else 'none'}, "
                   f"proto {'declares' if declares_boundary else 'none'}")
    call = SUM_CALLS_0521[sums_in]
    if call not in "".join(text.split()):
        out.append(f"sums with: proto says {call.rstrip('(')}, not in the source")
    return out
