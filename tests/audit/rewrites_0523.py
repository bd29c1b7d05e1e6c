"""Edits applied at test time to real SGLang 0.5.23 model files (read from the cached wheel, never
kept in the repository). An edit names the lines it rewrites, written without their indentation:
`block(old, new)` finds `old` (every line, in order, at one indentation) exactly `count` times and
puts `new` there at the same indentation. An edit whose anchor is missing or found a different
number of times fails the test (the release changed), never silently passes."""
from __future__ import annotations

import textwrap


class Anchor(Exception):
    """The real file no longer has what the edit rewrites (or has it more often than said)."""


def _lines(s: str) -> list[str]:
    return textwrap.dedent(s).strip("\n").splitlines()


def _match(lines: list[str], i: int, old: list[str]) -> str | None:
    """The indentation at which `old` starts at line i, or None."""
    first, lead = lines[i], old[0][: len(old[0]) - len(old[0].lstrip())]
    ws = first[: len(first) - len(first.lstrip())]
    if not ws.endswith(lead) or i + len(old) > len(lines):
        return None
    indent = ws[: len(ws) - len(lead)]
    if first != indent + old[0]:
        return None
    for j, want in enumerate(old[1:], 1):
        got = lines[i + j]
        if got != (indent + want if want else got.strip() and None or got):
            return None
    return indent


def block(old: str, new: str, count: int = 1, only: int | None = None):
    """An edit: each of the `count` places `old` stands is rewritten as `new` (same indentation);
    with `only`, the one of them at that index (from 0) alone."""
    want, put = _lines(old), _lines(new)

    def edit(text: str) -> str:
        lines = text.splitlines()
        out, i, found = [], 0, 0
        while i < len(lines):
            indent = _match(lines, i, want)
            if indent is None:
                out.append(lines[i])
                i += 1
                continue
            found += 1
            keep = only is not None and found - 1 != only
            out += lines[i:i + len(want)] if keep else [indent + p if p else "" for p in put]
            i += len(want)
        if found != count:
            raise Anchor(f"found {found} times, expected {count}: {want[0]!r}")
        return "\n".join(out) + "\n"
    return edit


def both(*edits):
    """Several edits, one after another."""
    def edit(text: str) -> str:
        for e in edits:
            text = e(text)
        return text
    return edit


def before(anchor: str, added: str, count: int = 1):
    """An edit: `added` is put just before the lines `anchor` (at their indentation)."""
    return block(anchor, added + "\n" + textwrap.dedent(anchor).strip("\n"), count)


def after(anchor: str, added: str, count: int = 1):
    """An edit: `added` is put just after the lines `anchor` (at their indentation)."""
    return block(anchor, textwrap.dedent(anchor).strip("\n") + "\n" + textwrap.dedent(added).strip("\n"), count)
