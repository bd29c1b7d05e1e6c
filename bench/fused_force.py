"""Write a fused-step table (actors/fused_table.py's format) in which one variant is the fastest
wherever it may run, so that a GPU sweep given it (SUMONCE_FUSED_TABLE) runs that variant through
the actors and checks it against proto like any other: how every variant the table may choose is
exercised end to end. The times are made up to force the choice, and the file says so.

usage: python bench/fused_force.py twoshot OUT.json [--shapes 2:2:64:float32 4:2:64:float32 4:4:64:float32]
"""
from __future__ import annotations

import argparse
import sys

sys.path.insert(0, ".")
from sumonce.actors.fused_table import BUCKETS, VARIANTS, Shape, Table, allowed, save  # noqa: E402

SWEEP_SHAPES = ("2:2:64:float32", "4:2:64:float32", "4:4:64:float32")  # the sweeps' fused steps


def forced(variant: str, shapes) -> Table:
    table = Table({"forced": variant, "note": "made-up times that make this variant the fastest"})
    for text in shapes:
        world, group, hidden, dtype = text.split(":")
        shape = Shape(int(world), int(group), int(hidden), dtype)
        table.merge(shape, {t: {v: (1.0 if v == variant else 2.0 + i) for i, v in enumerate(VARIANTS)
                                if allowed(v, shape.group, t)} for t in BUCKETS})
    return table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("out")
    p.add_argument("--shapes", nargs="+", default=list(SWEEP_SHAPES), help="world:group:hidden:dtype")
    args = p.parse_args(argv)
    save(forced(args.variant, args.shapes), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
