"""Every `--help` shows what each flag allows and the command's exit codes.

Flags whose default is an Enum get their members as the metavar (`{none,deepep,...}`), every
flag with a default value says it, and the exit codes go in the epilog."""
from __future__ import annotations

import argparse
from enum import Enum


def allowed(values) -> str:
    return "{" + ",".join(str(v) for v in values) + "}"


def show_allowed(p: argparse.ArgumentParser, exit_codes: str) -> argparse.ArgumentParser:
    """Fill in allowed values, defaults and the exit codes of parser `p`; returns `p`."""
    for a in p._actions:  # NOTE: argparse has no public walk over a parser's actions
        if isinstance(a.default, Enum):
            a.metavar = allowed(m.value for m in type(a.default))
        if a.help is argparse.SUPPRESS or any(a.default is x for x in (None, False, True, argparse.SUPPRESS)):
            continue
        if "default" not in (a.help or ""):
            shown = a.default.value if isinstance(a.default, Enum) else a.default
            a.help = f"{a.help + '; ' if a.help else ''}default: {shown}"
    p.epilog = exit_codes
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    return p
