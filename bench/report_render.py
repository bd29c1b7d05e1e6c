"""How big is the report, how long does `sumonce report` take to write it, and how long does a
real browser (Debian's chromium, headless) take to show it: median of RUNS loads, each in a fresh
page, from navigation until every map square is drawn and the load event has fired.

usage: python bench/report_render.py [--runs 5] [--out /tmp/sumonce-report.html] [-- REPORT ARGS...]
       (REPORT ARGS default: --sweep tests/report/data/sweep_small_w2.json --perf docs/perf/h200x4)
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["--sweep", str(ROOT / "tests/report/data/sweep_small_w2.json"), "--perf", str(ROOT / "docs/perf/h200x4")]
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def write(out: Path, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sumonce.cli", "report", str(out), *extra], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def render_times(out: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright
    times = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=shutil.which("chromium"),
                                                   headless=True, args=FLAGS, viewport={"width": 1300, "height": 1500})
        for _ in range(runs):
            page = ctx.new_page()
            start = time.perf_counter()
            page.goto(out.as_uri(), wait_until="load")
            page.wait_for_selector(".grid i")
            times.append(time.perf_counter() - start)
            page.close()
        ctx.close()
    return times


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else DEFAULT
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "sumonce-report.html"))
    args = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    out = Path(args.out)
    build = write(out, extra)
    times = render_times(out, args.runs)
    print(f"report: {out} ({out.stat().st_size / 1024:.0f} KiB), written in {build:.1f} s; "
          f"rendered in chromium: median {statistics.median(times):.2f} s, min {min(times):.2f} s "
          f"over {args.runs} loads")


if __name__ == "__main__":
    main()
