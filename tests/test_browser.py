"""Real-browser tests: serve the app on localhost and drive it in Chromium.

The quick start runs once, through its button, in a module fixture; every test that needs its runs
asks for that fixture, so the tests pass alone or in any order. Each page is watched for console
errors and for requests leaving localhost (the app must work offline). Screenshots go to
test-artifacts/ (the README's come from there: quickstart.png, compare.png, embeddings.png); page
timings go to test-artifacts/page_timings.json (bench/app_timing.py writes the benchmark's table).

Skipped when /usr/bin/chromium or Playwright is missing. The quick start is the real pipeline
(under a minute on an idle 2-core machine; the timeout allows for a busy one).
"""
from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from browser_pages import CHROMIUM, CHROMIUM_ARGS, Watch, app_pages, settle, time_every_page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
QUICK_START_TIMEOUT_S = float(os.environ.get("DISTILL_QUICKSTART_TIMEOUT", 1200))
REMOTE_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"']?(https?:)?//", re.I)  # plotly.js from a CDN, say
SMALL, LARGE = {"width": 1280, "height": 720}, {"width": 1600, "height": 1000}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt install chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("browser") / "runs"
    port = _free_port()
    env = {**os.environ, "DISTILL_RUNS": str(runs_dir)}
    log = open(runs_dir.parent / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "localhost", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail(f"streamlit did not start: {(runs_dir.parent / 'streamlit.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield url, runs_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:  # a server busy on a loaded machine: do not leave it running
            proc.kill()
            proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _page(browser, viewport=LARGE):
    page = browser.new_page(viewport=viewport)
    return page, Watch(page)


def _shot(page, name: str, tall: int | None = None) -> Path:
    """A screenshot of the viewport (Streamlit scrolls inside its main block, not the document);
    with `tall`, the viewport is first stretched to that height to take the whole page."""
    ARTIFACTS.mkdir(exist_ok=True)
    size = dict(page.viewport_size)
    if tall:
        page.set_viewport_size({"width": size["width"], "height": tall})
        time.sleep(1.5)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    if tall:
        page.set_viewport_size(size)
    return path


def _clean(page, watch: Watch) -> None:
    exc = page.locator("[data-testid='stException']")
    assert exc.count() == 0, exc.first.inner_text()[:2000]
    assert not watch.outside, f"requests left localhost: {watch.outside[:5]}"
    assert not watch.real_errors(), f"console errors: {watch.real_errors()[:5]}"


@pytest.fixture(scope="module")
def quick_start(server, browser) -> Path:
    """The digits quick start, run once through Home's button; returns the runs folder."""
    url, runs_dir = server
    page, watch = _page(browser)
    page.goto(url)
    settle(page)
    _shot(page, "00-home-empty")
    page.get_by_role("button", name="Run the digits quick start").click()
    page.get_by_text("Images made by the quick start").wait_for(timeout=QUICK_START_TIMEOUT_S * 1000)
    settle(page)
    _clean(page, watch)
    page.close()
    return runs_dir


def test_every_page_loads_offline_without_errors_and_is_timed(server, browser, quick_start):
    url, _ = server
    page, watch = _page(browser)
    pages = app_pages()
    assert len(pages) >= 8 and pages[0]["url"] == ""
    rows = []
    for p in pages:  # a cold and a warm visit of each page; the warm one is checked and photographed
        rows += time_every_page(page, url, [p])
        _clean(page, watch)
        assert page.locator("h1").first.inner_text().strip()
        _shot(page, f"page-{p['url'] or 'home'}")
        if p["url"] == "":
            _shot(page, "quickstart", tall=2300)  # the README's: the quick start's results, whole
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "page_timings.json").write_text(json.dumps(rows, indent=2) + "\n")
    assert [r["page"] for r in rows] == [p["title"] for p in pages]


def _traces(page, index: int) -> list[dict]:
    return page.evaluate(f"""() => Array.from(document.querySelectorAll('.js-plotly-plot'))[{index}].data
                              .map(t => ({{name: t.name, x: t.x, y: t.y}}))""")


def test_compare_curve_belongs_to_its_run(server, browser, quick_start):
    """A second SRe2L run that no sweep used must get no accuracy curve (rows were once matched by
    method name, so it showed the quick start's SRe2L curve); the quick start's SRe2L run gets its
    own sweep rows."""
    from appkit import runs_view
    from distill_core.synthesis.run import run_synthesize
    from distill_core.synthesis.synthesize import SynthesisConfig

    url, runs_dir = server
    qs = next(p for p in runs_dir.iterdir() if p.name.startswith("quickstart-") and p.name.count("-") == 2)
    run_synthesize(SynthesisConfig(teacher=str(runs_dir / f"{qs.name}-teacher"), preset="sre2l", ipc=10,
                                   iterations=5, device="cpu"), runs_dir / "other-sre2l")
    page, watch = _page(browser, SMALL)
    page.goto(f"{url}/compare")
    settle(page)
    run_b = page.locator("[data-testid='stSelectbox']").filter(has_text="run B").locator("input").first
    run_b.click()  # a select box: type the name, pick it
    page.keyboard.type("other-sre2l")
    page.keyboard.press("Enter")
    settle(page)
    _clean(page, watch)
    assert page.get_by_text("No sweep used").first.is_visible()
    names = [t["name"] for i in range(page.locator(".js-plotly-plot").count()) for t in _traces(page, i) if t["name"]]
    assert not any("other-sre2l" in n and "random" in n for n in names), names
    run_b.click()
    page.keyboard.type(f"{qs.name}-sre2l")
    page.keyboard.press("Enter")
    settle(page)
    curve = [t for i in range(page.locator(".js-plotly-plot").count()) for t in _traces(page, i)
             if t["name"] and t["name"].startswith(f"{qs.name}-sre2l · random")]
    assert len(curve) == 1, names
    sweep = runs_view.read_csv_rows(runs_dir / f"{qs.name}-sweep" / "results.csv")
    by_ratio: dict[float, list[float]] = {}
    for r in sweep:
        if r["source"] == "sre2l" and r["strategy"] == "random":
            by_ratio.setdefault(float(r["ratio"]), []).append(100 * r["accuracy"])
    want = {ratio: sum(v) / len(v) for ratio, v in by_ratio.items()}  # the curve is the mean over the seeds
    assert {len(v) for v in by_ratio.values()} == {3}
    got = dict(zip(curve[0]["x"], curve[0]["y"]))
    assert got == pytest.approx(want), (got, want)
    _shot(page, "compare", tall=2600)


def _px(page, selector: str) -> float:
    return page.evaluate(f"""() => {{ const e = document.querySelector({json.dumps(selector)});
                              return e ? parseFloat(getComputedStyle(e).fontSize) : 0 }}""")


def test_presentation_mode_enlarges_text_and_survives_a_reload(server, browser, quick_start):
    from appkit.style import PRESENTATION_PX

    url, _ = server
    page, watch = _page(browser, SMALL)
    page.goto(url)
    page.get_by_text("Within-class similarity").first.wait_for(timeout=120_000)
    settle(page)
    metric = "[data-testid='stMain'] [data-testid='stMetricValue'] div"
    plot_text = "[data-testid='stMain'] .js-plotly-plot .xtitle, [data-testid='stMain'] .js-plotly-plot .gtitle"
    before = _px(page, metric)
    page.get_by_text("Presentation mode").click()
    settle(page)
    assert "present=1" in page.url
    for _ in range(2):  # once after the toggle, once after a reload (the URL keeps the mode)
        assert _px(page, metric) >= PRESENTATION_PX["metric_value"] > before
        assert _px(page, "[data-testid='stMain'] [data-testid='stTable'] td") >= PRESENTATION_PX["table"]
        assert _px(page, "[data-testid='stMain'] [data-testid='stMarkdownContainer'] p") >= PRESENTATION_PX["text"]
        assert _px(page, "[data-testid='stMain'] .dc-lede") >= PRESENTATION_PX["text"]  # Home's introduction
        page.reload()
        page.get_by_text("Within-class similarity").first.wait_for(timeout=120_000)
        settle(page)
    _shot(page, "presentation-home-1280x720")
    page.goto(f"{url}/diversity?present=1")
    settle(page)
    _diversity_job(page)
    _clean(page, watch)
    assert _px(page, plot_text.split(", ")[0]) >= PRESENTATION_PX["plot"]
    _shot(page, "presentation-diversity-1280x720")


def _diversity_job(page) -> None:
    """Start the Diversity page's background job (unless it has run), see its progress bar and cancel
    button, and wait for its figures."""
    start = page.get_by_role("button", name="Compute diversity (background job)")
    if start.count():
        start.click()
        page.get_by_role("button", name="Cancel job").wait_for(timeout=60_000)
        assert page.locator("[data-testid='stProgress']").count() >= 1
        _shot(page, "diversity-job-running")
    page.locator(".js-plotly-plot").first.wait_for(timeout=300_000)
    settle(page)


def test_diversity_runs_as_a_job_then_shows_its_table(server, browser, quick_start):
    url, _ = server
    page, watch = _page(browser)
    page.goto(f"{url}/diversity")
    settle(page)
    _diversity_job(page)
    _clean(page, watch)
    assert page.get_by_text("Diversity table").first.is_visible()
    assert page.locator(".js-plotly-plot").count() == 2  # per-class similarity and the heatmaps
    _shot(page, "diversity", tall=2400)


def test_lasso_selection_shows_the_gallery(server, browser, quick_start):
    url, _ = server
    page, watch = _page(browser, {"width": 1600, "height": 1400})
    page.goto(f"{url}/embeddings")
    settle(page)
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for(timeout=60_000)
    page.locator(".modebar-btn[data-title='Box Select']").first.click()
    box = plot.locator(".nsewdrag").first.bounding_box()
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x0 + box["width"] * 0.6, y0 + box["height"] * 0.6, steps=12)
    page.mouse.up()
    page.get_by_text("selected").first.wait_for(timeout=60_000)
    settle(page)
    _clean(page, watch)
    _shot(page, "embeddings")


def test_report_and_its_figures_open_offline(server, browser, quick_start):
    url, _ = server
    page, watch = _page(browser)
    page.goto(f"{url}/export")
    settle(page)
    page.get_by_role("button", name="Build report").click()
    page.get_by_role("button", name="Download HTML report").wait_for(timeout=180_000)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download HTML report").click()
    html = Path(dl.value.path()).read_text()
    assert "Plotly.newPlot" in html and not REMOTE_SCRIPT.search(html)
    assert "HLR (pp)" in html  # DD-Ranking beside the accuracy, in the report too
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download zip").click()
    with zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())) as zf:
        pages = [n for n in zf.namelist() if n.endswith(".html") and n != "report.html"]
        assert pages
        for name in pages:  # each figure's own HTML carries plotly.js: no CDN, so it opens offline
            text = zf.read(name).decode()
            assert "Plotly.newPlot" in text and not REMOTE_SCRIPT.search(text), name
    _clean(page, watch)
    _shot(page, "export-built")
