"""`sumonce repro COUNTEREXAMPLE.json`: run the actors on a spec counterexample (model, variant,
version, config, state) and show the output against the reference."""
from __future__ import annotations

import json
import os
import stat
import sys
import warnings

from sumonce.proto import catalogue, semantics
from sumonce.proto.flags import SIZE_MAX, FlagError, _Parser
from sumonce.proto.serial import config_from_dict, state_from_dict
from sumonce.proto.sites import Version
from sumonce.proto.validation import ConfigError, validate

from .cases import Case, actors_scope
from sumonce.helptext import show_allowed

from .run import EXIT_CODES, UsageError, check_tokens, positive, seconds, seed

warnings.filterwarnings("ignore", message=".*NumPy.*")


MAX_BYTES = 1 << 20
"""A counterexample file is a few hundred bytes; anything past a MiB is not one."""


def read_json(path: str):
    """The file's JSON value; UsageError (one line) for what is not a small, regular UTF-8 JSON file."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):  # NOTE: before open(): opening a FIFO would block
        raise UsageError(f"{path}: not a regular file (give a counterexample .json that `sumonce prove "
                         "--counterexamples DIR` wrote)")
    if st.st_size > MAX_BYTES:
        raise UsageError(f"{path}: {st.st_size} bytes; a counterexample is at most {MAX_BYTES}")
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: not JSON ({e.msg}, line {e.lineno} column {e.colno})") from None
    except (RecursionError, ValueError) as e:  # nesting too deep; an integer of thousands of digits
        raise UsageError(f"{path}: not a counterexample ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:120] if str(e) else 'nesting too deep'})") from None


def check_shape(path: str, data) -> None:
    if not isinstance(data, dict):
        raise UsageError(f"{path}: a counterexample is a JSON object, not {type(data).__name__}")
    missing = [k for k in ("model", "variant", "version", "config", "state") if k not in data]
    if missing:
        raise UsageError(f"{path}: missing key(s) {', '.join(missing)}; a counterexample has "
                         "model, variant, version, config, state")
    for key, kind in (("model", str), ("variant", str), ("version", str), ("config", dict), ("state", dict)):
        if not isinstance(data[key], kind):
            raise UsageError(f"{path}: {key} must be a JSON {'object' if kind is dict else 'string'}, "
                             f"not {type(data[key]).__name__}")
    for part in ("config", "state"):
        for k, v in data[part].items():
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > SIZE_MAX:
                raise UsageError(f"{path}: {part}.{k} = {v}: out of range (at most {SIZE_MAX})")


def load(path: str, seed: int) -> Case:
    data = read_json(path)
    check_shape(path, data)
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
    if not semantics.forward_state_valid(c, s):
        raise UsageError("invalid forward state: num_tokens must be >= 0; attn_tp_input_scattered needs "
                         "enable_attn_tp_input_scattered, tp > 1, no DP attention, a2a none, no NSA CP")
    check_tokens(s)
    return Case(m.name, data["variant"], version, c, s, seed)


def main(argv: list[str]) -> int:
    p = _Parser(prog="sumonce repro", description=__doc__)
    p.add_argument("counterexample")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--timeout", type=seconds, default=120)
    p.add_argument("--address", help="the Ray cluster to join (default: RAY_ADDRESS, else a private local one)")
    p.add_argument("--num-cpus", type=positive, help="CPUs of the private local cluster (default: this machine's)")
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
