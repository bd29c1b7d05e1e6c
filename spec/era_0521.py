"""0.5.21's layer rows: exactly-once per catalogued model (proto.models_0521: the stage boundary's
exit publishes F and R, the model file sums on them), outside the era's known findings, and one
refuted row per finding and model it hits (a witness 0.5.21 accepts). Names end in `@0.5.21`.

Known findings, each read from the wheel (docs/ERAS.md section 7):
- fp4-allgather-ep-path: under Q post_experts_all_reduce's EP sum still runs (complete(False) has
  no Q term, utils.py:751), on top of the FP4 combine, over DP-local rows (qwen3_moe, deepseek_v2).
- model-lacks-dp-attention-gather: exaone_moe and hunyuan_v3 declare no stage boundary and gather
  nothing under DP attention (exaone_moe.py:491-516; hunyuan_v3.py:190, 215).
- decoder-allreduce-after-complete-output: step3p5's decoder all-reduces whenever the exit
  publishes neither flag (step3p5.py:620-621), also when the MoE ran on each rank's own rows (a2a
  combine, Q, dwdp) and the exit declared nothing owed (factories.py:161-163).
"""
from __future__ import annotations

from sumonce.proto import boundary as b
from sumonce.proto import models_0521 as m21
from sumonce.proto.eras import Era, accepts
from sumonce.proto.predicates import should_use_flashinfer_cutlass_moe_fp4_allgather as Q
from sumonce.proto.sites import Version

from .eras import in_any
from .findings import FINDINGS
from .properties import Expect, Kind, Property

ERA = Era.V0_5_21.value
SCOPE = ("configurations 0.5.21 accepts, a2a none/flashinfer/pplx/flashinfer_megamoe, any dwdp, off AMD, "
         "no attention CP, moe_dp_size 1, SGLANG_SHARED_EXPERT_TP1 off, not input-scattered")


def explain(model=None):
    """What the 0.5.21 functions say at a counterexample."""
    def story(c, s, F, R):
        out = {"release": ERA, "ffn_exit": m21.ffn_exit(c, s).value,
               "reduction_group": b.post_experts_reduction_group(c).value}
        if model is not None and not model.boundary:
            out["ffn_exit"] = "none: no stage boundary"
        if model is not None:
            F21, R21 = m21.published(c, s, model)
            n = m21.sum_counts(c, s, model)
            out.update(model=model.name, sums_in=model.sums_in.value, published={"F": F21, "R": R21},
                       counts_0521={"ep": n.ep, "moe_tp": n.moe_tp}, mixes_tokens=m21.mixes_tokens(c, s, model),
                       model_runs=m21.model_supports(c, model))
        return {"era_story": out}
    return story


def q_ep_path(c, s, m):
    return Q(c) and m.sums_in == m21.SumsIn.POST_EXPERTS_ALL_REDUCE and m.boundary


def lacks_dp_gather(c, s, m):
    return not m21.model_supports(c, m)


def decoder_sum_after_complete(c, s, m):
    return m.sums_in == m21.SumsIn.DECODER and c.tp_size > 1 and b.is_moe_input_scattered_across_dp_ranks(c)


KNOWN = (
    (q_ep_path, "fp4-allgather-ep-path", ("qwen3_moe", "deepseek_v2"), True,
     "Q: post_experts_all_reduce's EP sum runs on top of the FP4 combine, over DP-local rows "
     "(utils.py:751: complete(False) has no Q term; fixed in 0.5.22, utils.py:794)"),
    (lacks_dp_gather, "model-lacks-dp-attention-gather", ("exaone_moe", "hunyuan_v3"), False,
     "DP attention for a decoder with no stage boundary and no DP gather (exaone_moe.py:491-516, "
     "hunyuan_v3.py:190, 215): its block's sum adds ranks holding different tokens"),
    (decoder_sum_after_complete, "decoder-allreduce-after-complete-output", ("step3p5",), True,
     "step3p5's decoder all-reduces whenever the exit publishes neither flag (step3p5.py:620-621), "
     "also after an a2a combine, the FP4 combine or dwdp completed the output: summed twice"),
)
"""(region(c, s, m), name, models it hits, reachable (the model runs the configuration), meaning)."""


def once(model):
    def claim(c, s, F, R):
        return m21.exactly_once(c, s, model)
    return claim


def outside(model, regions):
    def scope(c, s, F, R):
        return accepts(Era.V0_5_21, c) and m21.in_scope(c, s, model) and not in_any(regions, c, s, model)
    return scope


def inside(model, region, reachable):
    def scope(c, s, F, R):
        runs = not reachable or m21.model_supports(c, model)
        return accepts(Era.V0_5_21, c) and m21.in_scope(c, s, model) and region(c, s, model) and runs
    return scope


def exactly_once(known: bool) -> list[Property]:
    regions = tuple(k[0] for k in KNOWN) if known else ()
    return [Property(f"exactly-once:{m.name}@{ERA}",
                     f"Every partial axis of size > 1 is summed exactly once ({m.sums_in.value}; {m.cite}), "
                     "outside the known 0.5.21 findings.",
                     SCOPE, Kind.ONCE, once(m), (outside(m, regions),), era=ERA, explain=explain(m))
            for m in m21.MODELS_0521]


def findings() -> list[Property]:
    out = []
    for region, name, models, reachable, meaning in KNOWN:
        for m in m21.MODELS_0521:
            if m.name in models:
                out.append(Property(f"finding:{name}:{m.name}@{ERA}", meaning, "inside the finding's region",
                                    Kind.FINDING, once(m), (inside(m, region, reachable),),
                                    expect=Expect.REFUTED, era=ERA, explain=explain(m),
                                    status=f"open in {ERA}"))
    return out


# --- every 0.5.11 finding, re-asked in 0.5.21 ------------------------------------------------

STILL_0521 = {"model-lacks-dp-attention-gather", "fp4-allgather-ep-path"}
"""0.5.11 findings 0.5.21 still has (refuted rows: this era's own findings of the same name); the
rest are gone (proved rows), each asked outside the era's other findings. So
decoder-allreduce-ignores-v-and-q is gone under V (the exit publishes R, step3p5's decoder skips),
and its Q part is 0.5.21's decoder-allreduce-after-complete-output."""
NOT_ASKED = {"aiter-unfused-branch-sums-moe-tp-only": "AMD is outside 0.5.21's layer scope",
             "aiter-fusion-under-dp-attention": "AMD is outside 0.5.21's layer scope",
             "moe-cp-allgather-under-v": "attention CP is outside 0.5.21's layer scope",
             "tp-guard-without-q": "the #23748 helper (0.5.11) fixed it"}


def _others(name):
    """The 0.5.21 known regions of other findings (a row is about its own finding only)."""
    return tuple(k[0] for k in KNOWN if k[1] != name)


def _pairs():
    from sumonce.proto.catalogue import MODELS
    return tuple(zip(MODELS, m21.MODELS_0521))


def carried_region(f, runs):
    """Some model is in 0.5.21's scope, outside its other findings, and inside the 0.5.11
    finding's region (and, with runs, can run the configuration in 0.5.21)."""
    excluded = _others(f.name)

    def scope(c, s, F, R):
        hit = False
        for m11, m in _pairs():
            hit = hit or (accepts(Era.V0_5_21, c) and m21.in_scope(c, s, m) and not in_any(excluded, c, s, m)
                          and f.region(c, s, m11, Version.HELPER) and (not runs or m21.model_supports(c, m)))
        return hit
    return scope


def once_in_region(f):
    excluded = _others(f.name)

    def claim(c, s, F, R):
        ok = True
        for m11, m in _pairs():
            if m21.in_scope(c, s, m) and not in_any(excluded, c, s, m) and f.region(c, s, m11, Version.HELPER):
                ok = ok and m21.exactly_once(c, s, m)
        return ok
    return claim


def explain_failing(f):
    """At a carried finding's witness: the first model in its region that fails in 0.5.21."""
    def story(c, s, F, R):
        for m11, m in _pairs():
            if m21.in_scope(c, s, m) and f.region(c, s, m11, Version.HELPER) and not m21.exactly_once(c, s, m):
                return explain(m)(c, s, F, R)
        return explain()(c, s, F, R)
    return story


def carried_findings() -> list[Property]:
    from .eras import fails_0511
    out = []
    for f in FINDINGS:
        if f.name in NOT_ASKED:
            continue
        still = f.name in STILL_0521
        runs = still and f.name != "model-lacks-dp-attention-gather"
        out.append(Property(
            f"finding-in-{ERA}:{f.name}", (f"{ERA} still has it: " if still else f"{ERA} no longer has it: ") + f.meaning,
            "the finding's region, for a model in 0.5.21's layer scope", Kind.FINDING, once_in_region(f),
            (carried_region(f, runs),), expect=Expect.REFUTED if still else Expect.HOLDS, era=ERA,
            explain=explain_failing(f), premise=fails_0511(f.region) if not still else None,
            status=f"still open in {ERA}" if still else f"gone in {ERA}"))
    return out


def layer_rows(known: bool = True) -> list[Property]:
    return exactly_once(known) + (findings() if known else []) + carried_findings()
