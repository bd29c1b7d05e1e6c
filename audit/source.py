"""Where the audited SGLang source comes from: a source tree, a wheel, or `sglang==X` (fetched with
`pip download --no-deps` into a cache). Model files are read straight from the wheel's zip.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

MODELS_DIR = "sglang/srt/models/"
UTILS = "sglang/srt/layers/moe/utils.py"
_SPEC = re.compile(r"^sglang==([0-9][0-9A-Za-z.+\-]*)$")


class TargetError(Exception):
    """A target that cannot be audited: the message is the one line the user sees."""


def cache_dir() -> Path:
    return Path(os.environ.get("SUMONCE_CACHE") or Path.home() / ".cache" / "sumonce" / "sglang")


@dataclass
class Source:
    """One SGLang release's files, by path relative to the package root (`sglang/srt/...`)."""
    label: str
    files: dict[str, str]
    """relative path -> text, for the model files and the MoE utils."""
    root: str
    """Where the files live (a directory or a wheel), for SARIF and messages."""

    def models(self) -> list[str]:
        return sorted(p for p in self.files if p.startswith(MODELS_DIR) and p.endswith(".py"))

    def utils(self) -> str | None:
        return self.files.get(UTILS)


def _wanted(rel: str) -> bool:
    return (rel.startswith(MODELS_DIR) and rel.endswith(".py") and rel.count("/") == 3) or rel == UTILS


def from_tree(path: Path) -> Source:
    base = next((b for b in (path, path / "python") if (b / MODELS_DIR).is_dir()), None)
    if base is None:
        raise TargetError(f"{path} is not an SGLang source tree (no sglang/srt/models or python/sglang/srt/models)")
    files = {}
    for f in sorted((base / MODELS_DIR).glob("*.py")):
        files[MODELS_DIR + f.name] = f.read_text(encoding="utf-8-sig", errors="replace")
    if (base / UTILS).is_file():
        files[UTILS] = (base / UTILS).read_text(encoding="utf-8-sig", errors="replace")
    return Source(str(path), files, str(base))


def from_wheel(path: Path) -> Source:
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if _wanted(n)]
            files = {n: z.read(n).decode("utf-8-sig", errors="replace") for n in names}
    except (zipfile.BadZipFile, OSError) as e:
        raise TargetError(f"{path} is not a readable wheel: {e}") from None
    if not any(n.startswith(MODELS_DIR) for n in files):
        raise TargetError(f"{path} is not an SGLang wheel (no {MODELS_DIR})")
    return Source(path.name, files, str(path))


def _cached_wheel(version: str) -> Path | None:
    hits = sorted(cache_dir().glob(f"sglang-{version}-*.whl"))
    return hits[0] if hits else None


def fetch(version: str) -> Path:
    """The wheel of sglang==version, from the cache or downloaded into it."""
    hit = _cached_wheel(version)
    if hit:
        return hit
    cache_dir().mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(cache_dir()), f"sglang=={version}"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise TargetError(f"sglang=={version}: the package registry did not answer in 600 s") from None
    hit = _cached_wheel(version)
    if out.returncode == 0 and hit:
        return hit
    err = out.stderr
    if "No matching distribution" in err or "Could not find a version" in err:
        raise TargetError(f"sglang=={version} does not exist on the package registry")
    last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "no output")
    raise TargetError(f"sglang=={version}: cannot download from the package registry ({last[:160]})")


def load(target: str) -> Source:
    """A tree, a wheel file, or sglang==X; TargetError (one line) otherwise."""
    m = _SPEC.match(target.strip())
    if m:
        src = from_wheel(fetch(m.group(1)))
        src.label = f"sglang=={m.group(1)}"
        return src
    if target.startswith("sglang") and not os.path.exists(target):
        raise TargetError(f"{target!r}: give a version as sglang==X (e.g. sglang==0.5.11)")
    path = Path(target)
    if not path.exists():
        raise TargetError(f"{target}: no such file or directory (give an SGLang tree, a wheel or sglang==X)")
    if path.is_dir():
        return from_tree(path)
    if path.suffix == ".whl":
        return from_wheel(path)
    raise TargetError(f"{target} is neither a directory nor a .whl file (give an SGLang tree, a wheel or sglang==X)")
