"""Trees for the coverage pattern tests: real 0.5.23 model files (read from the cached wheel at test
time, never stored here) or synthetic ones, under the 0.5.23 era fixture's layers (its utils.py
sums at the layer boundary), each rewritten by plain text edits that must match exactly once."""
from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

ERAS = Path(__file__).parent / "fixtures" / "eras"
MODELS = "sglang/srt/models/"


@cache
def wheel(version: str = "0.5.23") -> dict[str, str]:
    from sumonce.audit.source import load
    return load(f"sglang=={version}").files


def edit(text: str, *pairs: tuple[str, str], count: int = 1) -> str:
    """Each (old, new) replaced; old must occur exactly `count` times (a rewrite that misses fails)."""
    for old, new in pairs:
        assert text.count(old) == count, (old, text.count(old))
        text = text.replace(old, new)
    return text


def tree(root: Path, files: dict[str, str], era: str = "0.5.23") -> Path:
    """files: path under models/ -> text; the layers of era's fixture (tests/audit/fixtures/eras/)."""
    shutil.rmtree(root, ignore_errors=True)
    base = ERAS / era / "python" / "sglang" / "srt"
    for f in base.rglob("*.py"):
        if "models" not in f.relative_to(base).parts:
            dest = root / "sglang" / "srt" / f.relative_to(base)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(f.read_text())
    for rel, text in files.items():
        dest = root / MODELS / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)
    return root


def rows_of(root: Path) -> dict:
    from sumonce.audit.audit import audit
    from sumonce.audit.source import load
    rep = audit(load(str(root)))
    return {r.model: r for r in rep.coverage.rows}, rep
