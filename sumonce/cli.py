"""`sumonce`: each subcommand imports its layer only when called, so `sumonce prove` never loads
torch or ray and `sumonce run` never loads z3. Every subcommand's `main(argv)` returns the exit code;
user errors print one line to stderr and exit 2. A reader that closes the pipe early
(`sumonce prove --list | head`) ends the command quietly, with the exit code of a process that
SIGPIPE ended (141), here for every subcommand.
"""
from __future__ import annotations

import importlib
import os
import sys

# subcommand -> (module, function, one-line help)
SUBCOMMANDS = {
    "prove": ("sumonce.spec.cli", "prove_main", "run the z3 proofs; print verdicts and counterexamples"),
    "audit": ("sumonce.audit.command", "main", "audit real SGLang source: a tree, a wheel or sglang==X"),
    "run": ("sumonce.actors.run", "main", "run MoE layers on Ray actors and check them against a reference"),
    "repro": ("sumonce.actors.repro", "main", "replay a spec counterexample on Ray actors"),
    "config": ("sumonce.config_cmd", "main", "validate SGLang flags; print sizes and Q, V, F, R"),
    "report": ("sumonce.report.cli", "main", "write one offline HTML page: the map, audit, sweep, performance"),
    "demo": ("sumonce.demo", "main", "the proofs, a small CPU conformance sweep, then the report"),
    "version": (None, None, "print the version"),
}


EXIT_CODES = """exit codes (each command's --help gives its own):
  0  success          1  a check failed (a property, an audited site, a conformance row)
  2  bad input (one line on stderr, never a traceback)
  3  `sumonce run`: a shard died or hung, or the Ray cluster failed
  4  `sumonce audit`: a file could not be read or parsed (named; the rest audited)
  130, 143  `sumonce run` interrupted by SIGINT, SIGTERM      141  the reader closed the pipe (| head)"""
BROKEN_PIPE = 141


def usage() -> str:
    lines = ["usage: sumonce <command> [args]", "", "Is every partial sum reduced exactly once?", ""]
    lines += [f"  {name:<8} {text}" for name, (_, _, text) in SUBCOMMANDS.items()]
    lines += ["", "`sumonce <command> --help` for a command's flags.", "", EXIT_CODES]
    return "\n".join(lines)


# subcommand -> (modules it needs beyond the core, the extra that installs them)
EXTRAS = {"run": (("torch", "ray", "numpy"), "actors"), "repro": (("torch", "ray", "numpy"), "actors"),
          "demo": (("torch", "ray", "numpy", "jinja2", "pygal"), "actors,report"),
          "report": (("jinja2", "pygal"), "report")}


def missing_extra(name: str) -> str | None:
    """One line naming the extra to install when a subcommand's modules are absent."""
    import importlib.util
    needs, extra = EXTRAS.get(name, ((), ""))
    absent = [m for m in needs if importlib.util.find_spec(m) is None]
    if not absent:
        return None
    return (f"`sumonce {name}` needs {', '.join(absent)}, which the core install leaves out; "
            f"install them with: pip install 'sumonce[{extra}]'")


def main(argv: list[str] | None = None) -> int:
    try:
        code = dispatch(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # NOTE: stdout's buffer still holds what the closed pipe refused; point the descriptor at
        # /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE


def dispatch(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name in ("version", "--version"):
        if rest:
            print(f"sumonce {name}: unexpected argument(s) {' '.join(rest)!r}; it takes none", file=sys.stderr)
            return 2
        from sumonce import __version__
        print(f"sumonce {__version__}")
        return 0
    if name not in SUBCOMMANDS:
        print(f"sumonce: unknown command {name!r}; commands: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
        return 2
    module, func, _ = SUBCOMMANDS[name]
    missing = missing_extra(name)
    if missing:
        print(f"sumonce: {missing}", file=sys.stderr)
        return 2
    return getattr(importlib.import_module(module), func)(rest)


if __name__ == "__main__":
    sys.exit(main())
