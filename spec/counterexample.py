"""A counterexample a person can act on: the configuration as SGLang flags, the forward state,
F, R, Q, V, the per-axis sum counts, the upstream issue, and the plain-Python evaluation of the
claim at that point (False, or the lift is wrong)."""
from __future__ import annotations

from sumonce.proto import semantics
from sumonce.proto.alignment import model_runs_dp_attention
from sumonce.proto.flags import to_flags
from sumonce.proto.predicates import should_use_dp_reduce_scatterv, should_use_flashinfer_cutlass_moe_fp4_allgather
from sumonce.proto.serial import to_dict


def describe(w, z3_model, prop, claim_fn, model=None, version=None) -> dict:
    c, s, F, R = w.concrete(z3_model)
    model = model or prop.model
    version = version or prop.version
    out = {
        "property": prop.name,
        "flags": " ".join(to_flags(c)),
        "config": to_dict(c),
        "state": to_dict(s),
        "block_F": F, "block_R": R,
        "Q": should_use_flashinfer_cutlass_moe_fp4_allgather(c),
        "V": should_use_dp_reduce_scatterv(c),
        "sizes": {"tp": c.tp_size, "ep": c.ep_size, "moe_tp": c.moe_tp_size,
                  "attn_dp": c.attn_dp_size, "attn_cp": c.attn_cp_size, "attn_tp": c.attn_tp_size},
        "upstream": prop.upstream,
        "python_claim": bool(claim_fn(c, s, F, R)),
    }
    if getattr(prop, "explain", None) is not None:
        out["era"] = prop.era
        out.update(prop.explain(c, s, F, R))
    if model is not None:
        out["model"] = model.name
        out["decoder_F"] = semantics.decoder_fusion(c, s, model)
        out["decoder_R"] = semantics.decoder_reduce_scatter(c, s, model)
        out["block_F"] = semantics.block_fusion(c, s, model)
        out["block_R"] = semantics.block_reduce_scatter(c, s, model)
    if model is not None and version is not None:
        out["version"] = version.value
        out["counts"] = {}
        for variant in model.variants:
            n = semantics.sum_counts(c, s, model, variant, version)
            out["counts"][variant] = {"ep": n.ep, "moe_tp": n.moe_tp}
            if "variant" not in out and not semantics.exactly_once(c, s, model, variant, version):
                out["variant"] = variant
                out["axes"] = axis_story(c, n)
        out.setdefault("variant", model.variants[0])
        outcome = semantics.layer_outcome(c, s, model, out["variant"], version)
        out["outcome"] = outcome.value
        out["model_runs"] = semantics.model_supports(c, model)
        out["label"] = reachability_label(c, s, model, outcome)
    return out


def reachability_label(c, s, model, outcome) -> str:
    """'' for a witness SGLang reaches and the model runs; else what it is instead."""
    if not semantics.model_supports(c, model):
        if not model_runs_dp_attention(c, model):
            return "unsupported: model lacks DP attention support, server_args does not refuse it"
        return "unsupported: the model file has no pipeline stages"
    if outcome == semantics.Outcome.CRASH:
        return "crash: the server fails at this configuration (0.5.11)"
    return ""


def axis_story(c, n) -> str:
    """'EP axis (size 4) summed 2 times' for each axis that is not summed exactly once."""
    parts = []
    for axis, size, count in (("EP", c.ep_size, n.ep), ("MoE-TP", c.moe_tp_size, n.moe_tp)):
        if size > 1 and count != 1:
            what = "never summed (missing reduce)" if count == 0 else f"summed {count} times (double reduce)"
            parts.append(f"{axis} axis (size {size}) {what}")
    return "; ".join(parts)
