"""The page in a real headless browser (Debian's chromium, driven by playwright): it loads from a
file with no console error and no request leaving the file, every catalogued model has its
panels, the screenshot is not blank, and z3's witness squares are painted in a wrong colour.

The screenshot and the timings are written to $SUMONCE_REPORT_ARTIFACTS (default: pytest's tmp)."""
import json
import os
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest

from sumonce.proto.catalogue import MODELS
from sumonce.report.outcome import COLOURS, Outcome
from sumonce.report.panels import PANELS, SIZES

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("SUMONCE_REPORT_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(report_html, artifacts, tmp_path_factory):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium (.ci/run does it)")
    from playwright.sync_api import sync_playwright
    seen = {"errors": [], "requests": []}
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM,
                                                   headless=True, args=FLAGS, viewport={"width": 1300, "height": 1500})
        pg = ctx.new_page()
        pg.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
        pg.on("pageerror", lambda e: seen["errors"].append(str(e)))
        pg.on("request", lambda r: seen["requests"].append(r.url))
        start = time.perf_counter()
        pg.goto(report_html.as_uri(), wait_until="load")
        pg.wait_for_selector(".grid i")
        seen["render_s"] = time.perf_counter() - start
        seen["shot"] = pg.screenshot(path=str(artifacts / "report.png"))
        (artifacts / "timing.json").write_text(json.dumps(
            {"html_bytes": report_html.stat().st_size, "render_s": round(seen["render_s"], 3),
             "screenshot": str(artifacts / "report.png")}))
        print(f"\nreport: {report_html.stat().st_size} bytes, rendered in {seen['render_s']:.2f} s; "
              f"screenshot {artifacts / 'report.png'}")
        yield pg, seen
        ctx.close()


def test_loads_offline_with_no_console_error(page):
    pg, seen = page
    assert seen["errors"] == []
    assert seen["requests"] and all(u.startswith("file://") for u in seen["requests"]), seen["requests"]
    assert pg.title().startswith("sumonce report")


def test_every_catalogued_model_has_its_panels(page):
    pg, _ = page
    for m in MODELS:
        # every guard version (0.5.11 era), then the 0.5.23 era's panels
        panels = pg.locator(f'section[data-model="{m.name}"] .panel')
        assert panels.count() == len(PANELS) * (len(m.versions) + 1), m.name
        cells = pg.locator(f'section[data-model="{m.name}"] .grid i')
        assert cells.count() == len(PANELS) * (len(m.versions) + 1) * len(SIZES) ** 2
        assert pg.locator(f'section[data-model="{m.name}"] .grid[data-era="0.5.23"]').count() == len(PANELS)


def _ink(png: bytes) -> float:
    """The share of the screenshot's decompressed pixel bytes that are neither white nor zero."""
    pos, data = 8, b""
    while pos < len(png):
        size, kind = struct.unpack(">I4s", png[pos:pos + 8])
        if kind == b"IDAT":
            data += png[pos + 8:pos + 8 + size]
        pos += 12 + size
    raw = zlib.decompress(data)
    return sum(1 for b in raw if b not in (0, 255)) / len(raw)


def test_the_screenshot_is_not_blank(page):
    _, seen = page
    assert _ink(seen["shot"]) > 0.02


def test_witness_squares_are_painted_wrong(page):
    pg, _ = page
    right = {rgb(COLOURS[Outcome.ONCE]), rgb(COLOURS[Outcome.REFUSED])}
    witnesses = pg.locator(".witness")
    assert witnesses.count() >= 20
    for i in range(witnesses.count()):
        colour = witnesses.nth(i).locator(".cell").evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour not in right, witnesses.nth(i).get_attribute("data-witness")


def test_the_fused_ep_only_witness_square_on_the_map(page):
    """z3's witness for fused-allreduce-sums-ep-group-only is tp 4, ep 2 with fusion on (qwen3_moe,
    helper): that square of the 'fusion on' panel is 'never summed', and its title reproduces it."""
    pg, _ = page
    witness = pg.locator('section[data-model="qwen3_moe"] [data-version="helper"] '
                         '[data-witness="finding:fused-allreduce-sums-ep-group-only"]')
    assert "--tp-size 4 --ep-size 2" in witness.get_attribute("title")
    tp, ep = 4, 2
    square = pg.locator('section[data-model="qwen3_moe"] [data-version="helper"] [data-panel="fusion-on"] '
                        f'.grid i[data-i="{(ep - 1) * len(SIZES) + tp - 1}"]')
    assert square.evaluate("e => getComputedStyle(e).backgroundColor") == rgb(COLOURS[Outcome.NEVER])
    square.hover()
    title = square.get_attribute("title")
    assert "tp=4 ep=2: never summed" in title
    assert "sumonce run --era 0.5.11 --model qwen3_moe --guard-version helper --tp-size 4 --ep-size 2 " \
           "--enable-flashinfer-allreduce-fusion" in title
    assert "inside known finding fused-allreduce-sums-ep-group-only" in title


def test_clicking_a_square_gives_a_repro_file_proto_reads_back(page):
    """The footer's JSON is a `sumonce repro` counterexample: proto rebuilds the same square."""
    from sumonce.proto.catalogue import model
    from sumonce.proto.serial import config_from_dict, state_from_dict
    from sumonce.proto.sites import Version
    from sumonce.report.outcome import classify
    pg, _ = page
    tp, ep = 4, 2
    square = pg.locator('section[data-model="qwen3_moe"] [data-version="helper"] [data-panel="fusion-on"] '
                        f'.grid i[data-i="{(ep - 1) * len(SIZES) + tp - 1}"]')
    square.click()
    text = pg.locator("#pick").text_content()
    assert text.startswith("sumonce run --era 0.5.11 --model qwen3_moe --guard-version helper --tp-size 4 --ep-size 2")
    cx = json.loads(text[text.index("{"):])
    assert set(cx) == {"model", "variant", "version", "config", "state"}
    c, s = config_from_dict(cx["config"]), state_from_dict(cx["state"])
    assert (c.tp_size, c.ep_size) == (tp, ep)
    assert classify(c, s, model(cx["model"]), Version(cx["version"])).outcome == Outcome.NEVER


def test_the_same_square_in_the_0_5_23_era(page):
    """tp 4, ep 2 with fusion on is 'never summed' under the 0.5.11 guards; in the 0.5.23 era the
    exit sums both axes in one TP all-reduce: exactly once, and its run line names the era."""
    pg, _ = page
    tp, ep = 4, 2
    square = pg.locator('section[data-model="qwen3_moe"] .grid[data-era="0.5.23"][data-panel="fusion-on"] '
                        f'i[data-i="{(ep - 1) * len(SIZES) + tp - 1}"]')
    assert square.evaluate("e => getComputedStyle(e).backgroundColor") == rgb(COLOURS[Outcome.ONCE])
    square.click()
    text = pg.locator("#pick").text_content()
    assert text.startswith("sumonce run --era 0.5.23 --model qwen3_moe --tp-size 4 --ep-size 2") and "{" not in text
