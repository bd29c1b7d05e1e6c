"""`sumonce repro COUNTEREXAMPLE.json`: run the actors on a spec counterexample (model, variant,
version, config, state) and show the output against the reference."""
from __future__ import annotations

import json
import sys
import warnings

from sumonce.proto import catalogue, semantics
from sumonce.proto.flags import FlagError, _Parser
from sumonce.proto.serial import config_from_dict, state_from_dict
from sumonce.proto.sites import Version
from sumonce.proto.validation import ConfigError, validate

from .cases import Case, actors_scope
from sumonce.helptext import show_allowed

from .run import EXIT_CODES, UsageError

warnings.filterwarnings("ignore", message=".*NumPy.*")


def load(path: str, seed: int) -> Case:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: {e}") from None
    missing = [k for k in ("model", "variant", "version", "config", "state") if k not in data]
    if missing:
        raise UsageError(f"{path}: missing key(s) {', '.join(missing)}; a counterexample has "
                         "model, variant, version, config, state")
    try:
        m = catalogue.model(data["model"])
        version = Version(data["version"])
        c, s = validate(config_from_dict(data["config"])), state_from_dict(data["state"])
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if data["variant"] not in m.variants:
        raise UsageError(f"unknown variant {data['variant']!r}; variants: {', '.join(m.variants)}")
    if not semantics.in_scope(c, m) or actors_scope(c):
        raise UsageError(f"out of scope for the actors: {actors_scope(c) or 'a2a backend none and the model architecture'}")
    return Case(m.name, data["variant"], version, c, s, seed)


def main(argv: list[str]) -> int:
    p = _Parser(prog="sumonce repro", description=__doc__)
    p.add_argument("counterexample")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    show_allowed(p, EXIT_CODES)
    try:
        ns = p.parse_args(argv)
        case = load(ns.counterexample, ns.seed)
    except (FlagError, ConfigError, UsageError) as e:
        print(f"sumonce repro: {e}", file=sys.stderr)
        return 2
    from .execute_sweep import execute
    ns.sweep, ns.table = None, "rows"
    code = execute(ns, [case], None)
    c = case.config
    once = semantics.exactly_once(c, case.state, catalogue.model(case.model), case.variant, case.version)
    print(f"proto: exactly once = {once}; sizes ep={c.ep_size} moe_tp={c.moe_tp_size} "
          "(the row above: measured counts per axis, and the max abs error against the reference)")
    return code
