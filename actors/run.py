"""`python -m sumonce.actors.run` / `sumonce run`: MoE layers on Ray actors, checked against a
single-process reference; per-axis sum counts measured and compared with proto's prediction.

    python -m sumonce.actors.run --tp-size 4 --ep-size 2 --dp-size 2 --enable-dp-attention --model qwen3_moe
    python -m sumonce.actors.run --sweep small
    python -m sumonce.actors.run --nnodes 2 --tp-size 4 --simulate-nodes
    python -m sumonce.actors.run --sweep small --nnodes 2 --simulate-nodes   # worlds 4, 8
The cluster: --address (or RAY_ADDRESS, as `ray job submit` sets it) names one to join; without
either, a private local cluster of --num-cpus CPUs (default: this machine's) with its own temp dir,
shut down when the run ends (and, by a watchdog, when its driver dies). --nnodes N lays each TP
group over N nodes as SGLang does (proto.nodes): the cluster needs that many nodes;
--simulate-nodes starts them here, as several raylets on this machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

warnings.filterwarnings("ignore", message=".*NumPy.*")  # NOTE: torch without numpy warns at import

from dataclasses import replace

from sumonce.proto import catalogue, models_0523, semantics
from sumonce.proto.config import MoeA2ABackend
from sumonce.proto.eras import Era, refusal
from sumonce.proto.flags import FlagError, _Parser, add_config_flags, add_state_flags, config_from_namespace
from sumonce.proto.sites import Version
from sumonce.proto.validation import ConfigError

from sumonce import __version__
from sumonce.helptext import allowed, show_allowed

from .cases import STATES, Case, actors_scope, sweep, sweep_worlds
from .eras import DEFAULT_ERA, RUN_ERAS, era_arg
from .fused_table import TABLE_ENV, TableError, load


EXIT_CODES = """exit codes:
  0  every row conforms: measured sum counts equal proto's prediction
  1  a mismatch
  2  bad input, or a world this machine or cluster cannot hold, before any actor starts
     (one line on stderr)
  3  a shard died, hung or failed, or the Ray cluster did
  130, 143  interrupted by SIGINT, SIGTERM (the rows finished so far are printed)"""


class UsageError(ValueError):
    """Bad input: one line naming what is wrong and what is allowed."""


SEED_MAX = 2**31 - 1
TOKENS_MAX = 4096
"""The most tokens a DP rank the actors' layer runs (its tensors stay small on any machine)."""


def _int_in(lo: int, hi: int):
    """An argparse type: an integer from lo to hi, else one line naming the range."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{text!r}: give an integer from {lo} to {hi}")
        return n
    return parse


positive = _int_in(1, 2**20)
seed = _int_in(0, SEED_MAX)


def seconds(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < x <= 86400:  # NOTE: also refuses nan and inf
        raise argparse.ArgumentTypeError(f"{text!r}: give seconds, more than 0 and at most 86400")
    return x


def check_tokens(s) -> None:
    if s.num_tokens > TOKENS_MAX:
        raise UsageError(f"--num-tokens {s.num_tokens}: the actors' layer runs 0..{TOKENS_MAX} tokens a DP rank")


def build_parser(prog: str = "sumonce run") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_flags(p)
    add_state_flags(p)
    a = p.add_argument_group("actors")
    a.add_argument("--world-size", type=positive, help="ranks (= --tp-size, which it sets when that is not given)")
    a.add_argument("--model", default="qwen3_moe", metavar="MODEL",
                   help=f"a catalogued model: {', '.join(sorted(catalogue.MODELS_BY_NAME))}")
    a.add_argument("--era", metavar=allowed(e.value for e in RUN_ERAS),
                   help=f"the SGLang era whose decisions the shards execute (default: {DEFAULT_ERA.value}, the "
                        "newest release's; 0.5.11 when --guard-version or --variant is given; a sweep: both)")
    a.add_argument("--variant", help="the MoE forward method (0.5.11 era; default: every variant)")
    a.add_argument("--guard-version", dest="version", metavar=allowed(v.value for v in Version),
                   help="the guards to run: the helper's, the legacy ones at da175b96, or those before "
                        "an upstream fix (default: every version the model has)")
    a.add_argument("--version", action="version", version=f"sumonce {__version__}",
                   help="print sumonce's version and exit")
    a.add_argument("--json", action="store_true",
                   help="print the rows as JSON (schema: docs/OUTPUT.md, sumonce/schemas/run.schema.json)")
    a.add_argument("--sweep", metavar=allowed(STATES), help="a conformance sweep")
    a.add_argument("--worlds", help="world sizes of the sweep (default: 2,4 shards a node: 2,4 on one "
                   "node, 4,8 with --nnodes 2)")
    a.add_argument("--models", help="comma-separated models of the sweep (default: six)")
    a.add_argument("--seed", type=seed, default=0, help=f"weights and tokens (0..{SEED_MAX})")
    a.add_argument("--timeout", type=seconds, default=120, help="seconds any call to the shards may take")
    a.add_argument("--address", help="the Ray cluster to join (default: RAY_ADDRESS, else a private local one)")
    a.add_argument("--num-cpus", type=positive, help="CPUs of the private local cluster (default: this machine's); "
                   "with --simulate-nodes, of each node (default: the most shards a node holds)")
    a.add_argument("--simulate-nodes", action="store_true",
                   help="start the private cluster as simulated nodes, one raylet each on this machine, as "
                        "many as --nnodes lays a TP group over (no network between them: docs/ACTORS.md)")
    a.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    a.add_argument("--table", choices=("auto", "rows", "summary"), default="auto")
    a.add_argument("--inject-fault", help="test hook: kill:RANK or hang:RANK")
    return show_allowed(p, EXIT_CODES)


def single_cases(ns, argv) -> list[Case]:
    if ns.world_size is not None:
        explicit_tp = any(x.split("=")[0] in ("--tp-size", "--tp", "--tensor-parallel-size") for x in argv)
        if explicit_tp and ns.tp_size != ns.world_size:
            raise UsageError(f"--world-size {ns.world_size} differs from --tp-size {ns.tp_size}; "
                             "the world is one TP group: give one, or equal values")
        ns.tp_size = ns.world_size
    m = catalogue.model(ns.model)
    if ns.architecture == catalogue.model("qwen3_moe").architectures[0] and ns.model != "qwen3_moe":
        ns.architecture = m.architectures[0]
    c, s, notes = config_from_namespace(ns)
    check_tokens(s)
    for note in notes:
        print(f"note: {note}")
    era = single_era(ns)
    why = refusal(era, c)
    if why:
        raise UsageError(f"the {era.value} era refuses this configuration: {why} (proto.eras.accepts)")
    if era == Era.V0_5_23:
        return [case_0523(ns, c, s)]
    if not semantics.in_scope(c, m):
        raise UsageError(f"out of scope: {m.name} needs --moe-a2a-backend none and --architecture in "
                         f"{', '.join(m.architectures)}")
    why = actors_scope(c)
    if why:
        raise UsageError(f"out of the actors' scope: they need {why}")
    variants = [ns.variant] if ns.variant else list(m.variants)
    bad = [v for v in variants if v not in m.variants]
    if bad:
        raise UsageError(f"unknown variant {bad[0]!r} of {m.name}; variants: {', '.join(m.variants)}")
    return [Case(m.name, v, ver, c, s, ns.seed) for v in variants for ver in versions(ns, m)]


def era_option(text: str) -> Era:
    try:
        return era_arg(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def single_era(ns) -> Era:
    """--era, else 0.5.11 where the guards are named (--guard-version, --variant: that era's
    notions), else the newest release's era."""
    era = era_option(ns.era) if ns.era else None
    guards = [f for f, v in (("--guard-version", ns.version), ("--variant", ns.variant)) if v]
    if era == Era.V0_5_23 and guards:
        raise UsageError(f"{guards[0]} names the 0.5.11 era's guards; the 0.5.23 era has one decision "
                         "(the stage boundary's): leave it out, or give --era 0.5.11")
    return era or (Era.V0_5_11 if guards else DEFAULT_ERA)


def case_0523(ns, c, s) -> Case:
    m = models_0523.era_model(ns.model)
    if not models_0523.in_scope(c, m):
        raise UsageError(f"out of scope in the 0.5.23 era: {m.name} needs --architecture in "
                         f"{', '.join(m.architectures)}, --moe-a2a-backend none, a CUDA or CPU --gpu-arch, "
                         "--moe-dp-size 1 and --attn-cp-size 1 (a2a backends are out of the actors' scope)")
    if c.moe_a2a_backend != MoeA2ABackend.NONE:
        raise UsageError(f"--moe-a2a-backend {c.moe_a2a_backend.value}: out of the actors' scope (its "
                         "dispatch and combine are GPU kernels with no gloo counterpart); allowed: none")
    why = actors_scope(c)
    if why:
        raise UsageError(f"out of the actors' scope: they need {why}")
    if not models_0523.state_in_scope(c, s):
        raise UsageError("out of scope in the 0.5.23 era: an input-scattered batch (--attn-tp-input-scattered)")
    return Case(m.name, m.sums_at.value, None, c, s, ns.seed, Era.V0_5_23)


def versions(ns, m) -> list[Version]:
    if not ns.version:
        return list(m.versions)
    try:
        v = Version(ns.version)
    except ValueError:
        raise UsageError(f"unknown --guard-version {ns.version!r}; versions: "
                         f"{', '.join(x.value for x in Version)}") from None
    return [v]


def sweep_cases(ns) -> list[Case]:
    if ns.worlds is None:
        ns.worlds = ",".join(map(str, sweep_worlds(ns.nnodes)))
    try:
        worlds = tuple(positive(w) for w in ns.worlds.split(","))
    except argparse.ArgumentTypeError:
        raise UsageError(f"--worlds {ns.worlds!r}: comma-separated integers from 1 to {2**20}, e.g. 2,4") from None
    models = None if ns.models is None else tuple(ns.models.split(","))
    if models is not None and not all(models):
        raise UsageError(f"--models {ns.models!r}: comma-separated catalogued models, e.g. qwen3_moe,llama4 "
                         "(leave the flag out for the default six)")
    for name in models or ():
        catalogue.model(name)
    eras = (era_option(ns.era),) if ns.era else RUN_ERAS
    cases = sweep(ns.sweep, worlds, models, eras, nnodes=ns.nnodes) if models else \
        sweep(ns.sweep, worlds, eras=eras, nnodes=ns.nnodes)
    return [replace(k, seed=ns.seed) for k in cases]


def parse_fault(text):
    if not text:
        return None
    kind, _, rank = text.partition(":")
    if kind not in ("kill", "hang") or not rank.isdigit():
        raise UsageError(f"--inject-fault {text!r}: kill:RANK or hang:RANK")
    return kind, int(rank)


def parse(argv: list[str]):
    ns = build_parser().parse_args(argv)
    try:
        cases = sweep_cases(ns) if ns.sweep else single_cases(ns, argv)
    except KeyError as e:
        raise UsageError(e.args[0]) from None
    if not cases:
        raise UsageError("no case to run: no valid, in-scope configuration for these worlds and models")
    if ns.simulate_nodes and (ns.address or os.environ.get("RAY_ADDRESS")):
        raise UsageError("--simulate-nodes starts a private cluster: give it, or --address/RAY_ADDRESS, not both")
    fault = parse_fault(ns.inject_fault)
    smallest = min(k.world for k in cases)
    if fault and fault[1] >= smallest:
        raise UsageError(f"--inject-fault {ns.inject_fault}: rank {fault[1]} is not in world size "
                         f"{smallest}; allowed: ranks 0..{smallest - 1}")
    return ns, cases, fault


def check_fused_table() -> None:
    """A fused-step table given in SUMONCE_FUSED_TABLE is read before any actor starts."""
    if os.environ.get(TABLE_ENV):
        load(os.environ[TABLE_ENV])


def main(argv: list[str]) -> int:
    from .cluster import quiet
    quiet()
    try:
        ns, cases, fault = parse(argv)
        check_fused_table()
    except (FlagError, ConfigError, UsageError, TableError) as e:
        print(f"sumonce run: {e}", file=sys.stderr)
        return 2
    from .execute_sweep import execute
    return execute(ns, cases, fault)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
