"""Which implementation of the next layer's all-reduce + residual + RMSNorm is fastest on this
machine: flashinfer's one-shot kernel, its two-shot kernel, or the unfused NCCL all-reduce + add +
RMSNorm. A table of times measured per (world, group size, hidden, dtype, tokens), its JSON file
format, its cache (one file per machine and flashinfer version) and the choice read from it.

Pure Python (no torch): the GPU measurement that fills a table is actors/fused_calibrate.py.
The decision *that* the step runs, and over which group, stays proto's; this only picks *how*.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from sumonce.proto.config import FUSE_ALLREDUCE_MAX_BATCH_SIZE

VARIANTS = ("oneshot", "twoshot", "unfused")
LABELS = {"oneshot": "flashinfer one-shot", "twoshot": "flashinfer two-shot",
          "unfused": "NCCL all-reduce + add + RMSNorm"}
DTYPES = ("bfloat16", "float16", "float32")
FORMAT, VERSION = "sumonce.fused-table", 1
# Token counts a calibration measures (SGLang fuses at most FUSE_ALLREDUCE_MAX_BATCH_SIZE = 2048).
BUCKETS = tuple(2 ** i for i in range(FUSE_ALLREDUCE_MAX_BATCH_SIZE.bit_length()))
TABLE_ENV, CACHE_ENV = "SUMONCE_FUSED_TABLE", "SUMONCE_CACHE_DIR"


class TableError(ValueError):
    """A table file that cannot be used: one line naming the file, what is wrong, what is allowed."""


@dataclass(frozen=True)
class Shape:
    """Everything a choice depends on except the token count."""
    world: int
    group: int
    hidden: int
    dtype: str


def allowed(variant: str, group: int, tokens: int) -> bool:
    """flashinfer's two-shot kernel splits the tokens over the ranks: it needs more tokens than
    ranks (trtllm_ar.py asserts token_num > world_size); the others run at any size."""
    return variant != "twoshot" or tokens > group


def choose(times: dict[int, dict[str, float | None]], group: int, tokens: int) -> tuple[str, int] | None:
    """(fastest variant, the measured token count it was read at), or None with nothing measured.

    Reads the smallest measured token count >= tokens (the largest one beyond the table); a time
    of None (the variant failed its check) never wins; ties go to the earlier of VARIANTS."""
    if not times:
        return None
    above = [t for t in times if t >= tokens]
    at = min(above) if above else max(times)
    ok = {v: us for v, us in times[at].items() if us is not None and allowed(v, group, tokens)}
    if not ok:
        return None
    return min(ok, key=lambda v: (ok[v], VARIANTS.index(v))), at


@dataclass
class Table:
    """Measured microseconds per shape, token count and variant, and the machine they came from."""
    machine: dict
    entries: dict[Shape, dict[int, dict[str, float | None]]] = field(default_factory=dict)

    def times(self, shape: Shape) -> dict[int, dict[str, float | None]]:
        return self.entries.get(shape, {})

    def covers(self, shape: Shape, tokens) -> bool:
        have = self.times(shape)
        return all(t in have and have[t].get("unfused") is not None for t in tokens)

    def choose(self, shape: Shape, tokens: int) -> tuple[str, int] | None:
        return choose(self.times(shape), shape.group, tokens)

    def merge(self, shape: Shape, times: dict[int, dict[str, float | None]]) -> None:
        self.entries.setdefault(shape, {}).update({t: dict(v) for t, v in times.items()})

    def to_json(self) -> dict:
        rows = [{"world": s.world, "group": s.group, "hidden": s.hidden, "dtype": s.dtype, "tokens": t,
                 "us": {v: us[v] for v in VARIANTS if v in us}}
                for s, by_t in sorted(self.entries.items(), key=lambda kv: _shape_order(kv[0]))
                for t, us in sorted(by_t.items())]
        return {"format": FORMAT, "version": VERSION, "machine": self.machine, "entries": rows}


def _shape_order(s: Shape):
    return (s.world, s.group, s.hidden, s.dtype)


def _positive_int(row, name, where):
    v = row.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise TableError(f"{where}: {name!r} must be a positive integer, got {v!r}")
    return v


def _entry(row, where) -> tuple[Shape, int, dict]:
    if not isinstance(row, dict):
        raise TableError(f"{where}: an entry must be an object with world, group, hidden, dtype, tokens, us")
    world, group, hidden, tokens = (_positive_int(row, k, where) for k in ("world", "group", "hidden", "tokens"))
    if not 2 <= group <= world:
        raise TableError(f"{where}: group {group} must be between 2 and world {world}")
    if row.get("dtype") not in DTYPES:
        raise TableError(f"{where}: dtype {row.get('dtype')!r}; allowed: {', '.join(DTYPES)}")
    us = row.get("us")
    if not isinstance(us, dict) or set(us) - set(VARIANTS):
        raise TableError(f"{where}: 'us' must map some of {', '.join(VARIANTS)} to microseconds")
    for v, t in us.items():
        if t is not None and (not isinstance(t, (int, float)) or isinstance(t, bool) or not t > 0):
            raise TableError(f"{where}: us[{v!r}] must be a positive number or null, got {t!r}")
    if us.get("unfused") is None:
        raise TableError(f"{where}: us['unfused'] is required (the fallback every choice is measured against)")
    if us.get("twoshot") is not None and not allowed("twoshot", group, tokens):
        raise TableError(f"{where}: two-shot at {tokens} tokens over {group} ranks; it needs tokens > group")
    return Shape(world, group, hidden, row["dtype"]), tokens, {v: (None if t is None else float(t)) for v, t in us.items()}


def from_json(data, where: str) -> Table:
    """A Table from a parsed file; TableError naming `where` when it is not one."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TableError(f"{where}: not a fused-step table (needs \"format\": \"{FORMAT}\")")
    if data.get("version") != VERSION:
        raise TableError(f"{where}: version {data.get('version')!r}; this sumonce reads version {VERSION}")
    if not isinstance(data.get("machine"), dict) or not isinstance(data.get("entries"), list):
        raise TableError(f"{where}: needs a 'machine' object and an 'entries' list")
    table, seen = Table(data["machine"]), set()
    for i, row in enumerate(data["entries"]):
        shape, tokens, us = _entry(row, f"{where}: entry {i}")
        if (shape, tokens) in seen:
            raise TableError(f"{where}: entry {i} repeats {shape} at {tokens} tokens")
        seen.add((shape, tokens))
        table.merge(shape, {tokens: us})
    return table


def load(path) -> Table:
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise TableError(f"{path}: cannot read the fused-step table: {e.strerror or e}") from None
    except ValueError as e:
        raise TableError(f"{path}: not JSON: {e}") from None
    return from_json(data, str(path))


def save(table: Table, path) -> None:
    """Write atomically (a reader sees the old file or the new one, never half of one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(table.to_json(), indent=1) + "\n")
    os.replace(tmp, path)


def _slug(text) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-") or "x"


def cache_path(machine: dict, root=None) -> Path:
    """One file per machine (host, GPU model and count) and software (flashinfer, NCCL, torch):
    a table measured under another flashinfer version or on another machine is never read."""
    root = Path(root or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sumonce") / "fused"
    digest = hashlib.sha256(json.dumps(machine, sort_keys=True).encode()).hexdigest()[:12]
    name = f"{_slug(machine.get('gpu'))}-x{machine.get('gpus')}-flashinfer-{_slug(machine.get('flashinfer'))}-{digest}.json"
    return root / name


def startup_table(machine: dict, given=None) -> tuple[Table, str, Path | None]:
    """(table, where it came from, the cache file to extend or None): a given file (argument or
    SUMONCE_FUSED_TABLE) as it is, else this machine's cache, else an empty table to calibrate.
    A bad given file raises TableError; a bad or foreign cache file is ignored (recalibrated)."""
    given = given or os.environ.get(TABLE_ENV)
    if given:
        return load(given), f"file {given}", None
    path = cache_path(machine)
    if path.exists():
        try:
            table = load(path)
            if table.machine == machine:
                return table, f"cache {path}", path
        except TableError:
            pass
    return Table(dict(machine)), "calibrated", path


def merge_into_cache(path: Path, machine: dict, shape: Shape, times) -> None:
    """Add one shape's times to the cache file, keeping what other processes wrote there."""
    try:
        table = load(path) if path.exists() else Table(dict(machine))
        if table.machine != machine:
            table = Table(dict(machine))
    except TableError:
        table = Table(dict(machine))
    table.merge(shape, times)
    save(table, path)
