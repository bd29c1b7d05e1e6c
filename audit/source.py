"""Where the audited SGLang source comes from: a source tree, a wheel, or `sglang==X` (fetched with
`pip download --no-deps` into a cache). Model files are read straight from the wheel's zip.

Reading is bounded and never trusted: a file that cannot be read (a dangling symlink or a symlink
loop, a directory or FIFO with a .py name, a file over MAX_FILE bytes, a NUL byte, text that is not
UTF-8, a wheel entry that is encrypted, corrupt or compressed by an unknown method) is recorded in
`Source.unread` with the reason, never skipped silently; the other files are still read.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

MODELS_DIR = "sglang/srt/models/"
UTILS = "sglang/srt/layers/moe/utils.py"
BOUNDARY_DIR = "sglang/srt/layers/layer_boundary/"
COMMUNICATOR = "sglang/srt/layers/communicator.py"
MARKERS = (BOUNDARY_DIR, COMMUNICATOR)
"""Paths whose presence the era detection reads (audit/era.py); their text is not read."""
MAX_FILE = 8 << 20
"""The most bytes a model file may have (SGLang's largest is a few hundred KiB)."""
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
    unread: dict[str, str] = field(default_factory=dict)
    """relative path -> why it could not be read (the audit reports each as a failure)."""
    present: set[str] = field(default_factory=set)
    """Which of MARKERS the tree or wheel has."""

    def models(self) -> list[str]:
        """The top-level model files (those the audit reads for sites and rows)."""
        return sorted(p for p in self.files if p.startswith(MODELS_DIR) and p.endswith(".py") and p.count("/") == 3)

    def subpackages(self) -> list[str]:
        """The modules of the models' sub-packages one level down (`models/inkling_common/moe.py`):
        read only where a model file imports its MoE code from one (audit/coverage.py)."""
        return sorted(p for p in self.files if p.startswith(MODELS_DIR) and p.endswith(".py") and p.count("/") == 4)

    def utils(self) -> str | None:
        return self.files.get(UTILS)


def _wanted(rel: str) -> bool:
    return (rel.startswith(MODELS_DIR) and rel.endswith(".py") and rel.count("/") in (3, 4)) or rel == UTILS


class Unreadable(Exception):
    """One file that cannot be read: the message says why."""


def decode(data: bytes) -> str:
    if len(data) > MAX_FILE:
        raise Unreadable(f"over {MAX_FILE} bytes, the most a model file may have")
    if b"\0" in data:
        raise Unreadable("holds a NUL byte (not Python source)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise Unreadable(f"not UTF-8 ({e.reason} at byte {e.start})") from None


def read_file(path: Path) -> str:
    """A regular file's text, bounded; Unreadable for anything else."""
    try:
        st = os.stat(path)  # follows symlinks: a loop or a dangling link fails here
    except OSError as e:
        what = "a symlink loop" if e.errno == 40 else "a dangling symlink" if path.is_symlink() else e.strerror
        raise Unreadable(what) from None
    if stat.S_ISDIR(st.st_mode):
        raise Unreadable("a directory, not a file")
    if not stat.S_ISREG(st.st_mode):  # NOTE: before open(): a FIFO would block the audit
        raise Unreadable("not a regular file (a FIFO, socket or device)")
    if st.st_size > MAX_FILE:
        raise Unreadable(f"{st.st_size} bytes, over the {MAX_FILE} a model file may have")
    try:
        with open(path, "rb") as f:
            return decode(f.read(MAX_FILE + 1))
    except OSError as e:
        raise Unreadable(e.strerror or str(e)) from None


def _base(path: Path) -> Path | None:
    """The directory holding sglang/srt/: a git checkout (python/sglang/srt), a package's parent
    (sglang/srt), or the srt directory itself."""
    srt_dir = [path.parent.parent] if path.name == "srt" and path.parent.name == "sglang" else []
    return next((b for b in (path, path / "python", *srt_dir) if (b / MODELS_DIR).is_dir()), None)


def _git_label(path: Path) -> str:
    """`PATH (git <commit>)` for a git checkout, else PATH."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return str(path)
    return f"{path} (git {out.stdout.strip()})" if out.returncode == 0 and out.stdout.strip() else str(path)


def from_tree(path: Path) -> Source:
    base = _base(path)
    if base is None:
        raise TargetError(f"{path} is not an SGLang source tree (no sglang/srt/models, python/sglang/srt/models, "
                          "or models/ under an sglang/srt directory)")
    src = Source(_git_label(path) if (path / ".git").exists() else str(path), {}, str(base))
    src.present = {m for m in MARKERS if os.path.lexists(base / m)}
    names = sorted(n for n in os.listdir(base / MODELS_DIR) if n.endswith(".py"))
    wanted = [MODELS_DIR + n for n in names] + _subpackage_files(base / MODELS_DIR)
    if os.path.lexists(base / UTILS):
        wanted.append(UTILS)
    for rel in wanted:
        try:
            src.files[rel] = read_file(base / rel)
        except Unreadable as e:
            src.unread[rel] = str(e)
    return src


def _subpackage_files(models: Path) -> list[str]:
    """models/<package>/<module>.py, one level down (the sub-packages' own sub-folders are not read)."""
    out = []
    for pkg in sorted(p for p in models.iterdir() if p.is_dir() and not p.is_symlink()):
        try:
            out += [f"{MODELS_DIR}{pkg.name}/{n}" for n in sorted(os.listdir(pkg)) if n.endswith(".py")]
        except OSError:  # not listed: a row whose MoE code is there says it was not read
            continue
    return out


def read_entry(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x1:
        raise Unreadable("an encrypted wheel entry")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        raise Unreadable(f"a wheel entry compressed by unknown method {info.compress_type}")
    if info.file_size > MAX_FILE:
        raise Unreadable(f"{info.file_size} bytes, over the {MAX_FILE} a model file may have")
    try:
        with z.open(info) as f:
            return decode(f.read(MAX_FILE + 1))
    except Unreadable:
        raise
    except Exception as e:  # noqa: BLE001 -- zlib.error, BadZipFile (CRC), EOFError, LZMAError, ...
        raise Unreadable(f"a corrupt wheel entry ({type(e).__name__}: {str(e)[:100]})") from None


def from_wheel(path: Path) -> Source:
    src = Source(path.name, {}, str(path))
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                name = info.filename
                if name.startswith(MARKERS):  # NOTE: a tuple: one call for the 6,000 entries that are neither
                    src.present.update(m for m in MARKERS if name.startswith(m))
                if not _wanted(name):
                    continue
                try:
                    src.files[info.filename] = read_entry(z, info)
                except Unreadable as e:
                    src.unread[info.filename] = str(e)
    except (zipfile.BadZipFile, OSError) as e:
        raise TargetError(f"{path} is not a readable wheel: {e}") from None
    if not any(n.startswith(MODELS_DIR) for n in (*src.files, *src.unread)):
        raise TargetError(f"{path} is not an SGLang wheel (no {MODELS_DIR})")
    return src


def _cached_wheel(version: str) -> Path | None:
    hits = sorted(cache_dir().glob(f"sglang-{version}-*.whl"))
    return hits[0] if hits else None


def fetch(version: str) -> Path:
    """The wheel of sglang==version, from the cache or downloaded into it."""
    hit = _cached_wheel(version)
    if hit:
        return hit
    try:
        cache_dir().mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TargetError(f"cannot create the wheel cache {cache_dir()} ({e.strerror}); set SUMONCE_CACHE "
                          "to a writable directory") from None
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


_NEWEST = re.compile(r"^sglang \(([0-9][0-9A-Za-z.+\-]*)\)", re.M)


def newest() -> str:
    """The newest sglang release on the package registry (`pip index versions sglang`)."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", "sglang", "--disable-pip-version-check"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise TargetError("sglang: the package registry did not answer in 120 s (give sglang==X to audit a "
                          "cached release)") from None
    m = _NEWEST.search(out.stdout)
    if out.returncode == 0 and m:
        return m.group(1)
    last = next((ln.strip() for ln in reversed(out.stderr.splitlines()) if ln.strip()), "no output")
    raise TargetError(f"sglang: cannot ask the package registry for the newest release ({last[:160]}); "
                      "give sglang==X to audit a cached release")


def load(target: str) -> Source:
    """A tree, a wheel file, sglang==X, or sglang (the newest release); TargetError (one line) otherwise."""
    if target.strip() == "sglang" and not os.path.exists(target):
        version = newest()
        src = load(f"sglang=={version}")
        src.label = f"sglang=={version} (the newest on the registry)"
        return src
    m = _SPEC.match(target.strip())
    if m:
        src = from_wheel(fetch(m.group(1)))
        src.label = f"sglang=={m.group(1)}"
        return src
    if target.startswith("sglang") and not os.path.exists(target):
        raise TargetError(f"{target!r}: give a version as sglang==X (e.g. sglang==0.5.11), or sglang for the newest")
    path = Path(target)
    if not path.exists():
        raise TargetError(f"{target}: no such file or directory (give an SGLang tree, a wheel or sglang==X)")
    if path.is_dir():
        return from_tree(path)
    if path.suffix == ".whl":
        return from_wheel(path)
    raise TargetError(f"{target} is neither a directory nor a .whl file (give an SGLang tree, a wheel or sglang==X)")
