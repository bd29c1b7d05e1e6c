"""sglang's versions on the package registry (`pip index versions sglang`, about 1 s), asked in a
process of its own so that `--history` audits the cached releases of its range meanwhile
(audit/history.py's run_range), and the versions of the wheels already in the cache."""
from __future__ import annotations

import re
import subprocess
import sys
import time

from .source import TargetError, cache_dir

VERSION = re.compile(r"^(\d+(?:\.\d+)*)(?:\.post(\d+))?$")
TIMEOUT_S = 300


class Registry:
    """`pip index versions sglang`, started at once; versions() waits for its answer."""

    def __init__(self):
        cmd = [sys.executable, "-m", "pip", "index", "versions", "sglang", "--disable-pip-version-check"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.deadline = time.monotonic() + TIMEOUT_S
        self.answer: list[str] | TargetError | None = None

    def fileno(self) -> int:
        """Readable when pip has written its answer (multiprocessing.connection.wait)."""
        return self.proc.stdout.fileno()

    def versions(self) -> list[str]:
        """The registry's final and post releases (unsorted); TargetError, one line, otherwise."""
        if self.answer is None:
            self.answer = self._read()
        if isinstance(self.answer, TargetError):
            raise self.answer
        return self.answer

    def _read(self) -> list[str] | TargetError:
        try:
            out, err = self.proc.communicate(timeout=max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.close()
            return TargetError(f"--history: the package registry did not answer in {TIMEOUT_S} s")
        line = next((ln for ln in out.splitlines() if ln.startswith("Available versions:")), None)
        if self.proc.returncode != 0 or line is None:
            last = next((ln.strip() for ln in reversed(err.splitlines()) if ln.strip()), "no output")
            return TargetError(f"--history: cannot list sglang's versions on the package registry ({last[:160]})")
        return [v for v in (x.strip() for x in line.split(":", 1)[1].split(",")) if VERSION.match(v)]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


def cached_versions() -> list[str]:
    """The versions of the sglang wheels in the cache (`sglang-<version>-<tags>.whl`), unsorted."""
    names = (w.name.split("-") for w in cache_dir().glob("sglang-*.whl"))
    return sorted({n[1] for n in names if len(n) >= 3 and VERSION.match(n[1])})
