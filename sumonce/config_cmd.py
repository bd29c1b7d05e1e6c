"""`sumonce config`: validate flags given as SGLang spells them; print the derived sizes and the
values of Q, V, F, R (and the helper's verdicts) for one forward state."""
from __future__ import annotations

import argparse
import sys

from sumonce.helptext import show_allowed
from sumonce.proto import catalogue, communicator, predicates
from sumonce.proto.flags import FlagError, _Parser, add_config_flags, add_state_flags, config_from_namespace
from sumonce.proto.validation import ConfigError


EXIT_CODES = """exit codes:
  0  the flags form a configuration SGLang accepts (its sizes and flags printed)
  2  a bad flag or a configuration SGLang refuses (one line on stderr naming the rule)"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="sumonce config", description=__doc__)
    add_config_flags(p)
    add_state_flags(p)
    p.add_argument("--model", help="also show what this catalogued model's decoder computes: "
                   + ", ".join(sorted(catalogue.MODELS_BY_NAME)))
    return show_allowed(p, EXIT_CODES)


def report(c, s, model=None) -> list[tuple[str, str]]:
    Q = predicates.should_use_flashinfer_cutlass_moe_fp4_allgather(c)
    V = predicates.should_use_dp_reduce_scatterv(c)
    F = communicator.should_allreduce_fusion(c, s)
    R = communicator.use_reduce_scatter(c, s, allow_reduce_scatter=True)
    rows = [("tp_size", c.tp_size), ("ep_size", c.ep_size), ("moe_tp_size", c.moe_tp_size),
            ("attn_dp_size", c.attn_dp_size), ("attn_tp_size", c.attn_tp_size),
            ("allreduce_fusion_enabled", c.allreduce_fusion_enabled),
            ("Q should_use_flashinfer_cutlass_moe_fp4_allgather", Q),
            ("V should_use_dp_reduce_scatterv", V),
            ("F should_allreduce_fusion", F),
            ("R use_reduce_scatter (allow_reduce_scatter=True)", R)]
    for path, is_tp in (("EP", False), ("TP", True)):
        skip = predicates.should_skip_post_experts_all_reduce(
            c, is_tp_path=is_tp, use_reduce_scatter=R, should_allreduce_fusion=F)
        rows.append((f"helper skips the {path} all-reduce", skip))
    if model is not None:
        from sumonce.proto import semantics
        for variant in model.variants:
            n = semantics.sum_counts(c, s, model, variant, catalogue.Version.HELPER)
            rows.append((f"{model.name} {variant}: sums EP, MoE-TP", f"{n.ep}, {n.moe_tp}"))
    return [(k, str(v)) for k, v in rows]


def main(argv: list[str]) -> int:
    p = build_parser()
    try:
        ns = p.parse_args(argv)
        c, s, notes = config_from_namespace(ns)
        model = catalogue.model(ns.model) if ns.model else None
    except (FlagError, ConfigError) as e:
        print(f"sumonce config: {e}", file=sys.stderr)
        return 2
    except KeyError as e:
        print(f"sumonce config: {e.args[0]}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}")
    rows = report(c, s, model)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    return 0
