"""Real-browser test: serve the app on localhost, run the digits quick start to the end in Chromium,
open every page, select points in the embedding, build the report; screenshots go to test-artifacts/.

Skipped when /usr/bin/chromium or Playwright is missing. The quick start is the real pipeline
(about a minute on an idle 2-core machine; the timeout allows for a busy one).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = ("data_teacher", "synthesize", "diversity", "embeddings", "soft_labels", "expert_labels", "compare", "export")
QUICK_START_TIMEOUT_S = float(os.environ.get("DISTILL_QUICKSTART_TIMEOUT", 1200))

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
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


SCRIPT_STATE = "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"


def _settle(page, timeout_s: float = 180) -> None:
    """Wait until the page's script run has finished (stApp's script state) and no spinner is left."""
    page.wait_for_selector("h1", timeout=60_000)
    deadline = time.time() + timeout_s
    quiet = 0
    while time.time() < deadline and quiet < 3:
        idle = page.evaluate(SCRIPT_STATE) not in ("running", "initial", None)
        quiet = quiet + 1 if idle and page.locator("[data-testid='stSpinner']").count() == 0 else 0
        time.sleep(0.5)
    time.sleep(1.0)  # let Plotly finish drawing


def _shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _no_exception(page) -> None:
    exc = page.locator("[data-testid='stException']")
    assert exc.count() == 0, exc.first.inner_text()[:2000]


def test_quick_start_then_every_page(server, browser):
    url, runs_dir = server
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    page.goto(url)
    _settle(page)
    _shot(page, "00-home-empty")
    page.get_by_role("button", name="Run the digits quick start").click()
    page.get_by_text("Images made by the quick start").wait_for(timeout=QUICK_START_TIMEOUT_S * 1000)
    _settle(page)
    _no_exception(page)
    _shot(page, "01-home-quickstart-done")
    for i, name in enumerate(PAGES, start=2):
        page.goto(f"{url}/{name}")
        _settle(page)
        _no_exception(page)
        assert page.locator("h1").first.inner_text().strip()
        _shot(page, f"{i:02d}-{name}")
    runs = {p.name for p in runs_dir.iterdir()}
    assert any(n.endswith("-lpld") for n in runs) and any(n.endswith("-sre2l") for n in runs), runs


def test_lasso_selection_shows_the_gallery(server, browser):
    url, runs_dir = server
    if not any(runs_dir.glob("*/images.pt")):
        pytest.skip("needs the quick start's image sets (run with the test above)")
    page = browser.new_page(viewport={"width": 1440, "height": 1400})
    page.goto(f"{url}/embeddings")
    _settle(page)
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
    _settle(page)
    _no_exception(page)
    _shot(page, "10-embeddings-selection")


def test_report_and_presentation_mode(server, browser):
    url, runs_dir = server
    if not any(runs_dir.glob("*/images.pt")):
        pytest.skip("needs the quick start's image sets (run with the test above)")
    page = browser.new_page(viewport={"width": 1440, "height": 1800})
    page.goto(f"{url}/export")
    _settle(page)
    page.get_by_role("button", name="Build report").click()
    page.get_by_role("button", name="Download HTML report").wait_for(timeout=180_000)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download HTML report").click()
    html_path = ARTIFACTS / "report.html"
    dl.value.save_as(str(html_path))
    assert "Plotly.newPlot" in html_path.read_text()
    _shot(page, "11-export-built")
    page.goto(f"{url}/diversity")
    _settle(page)
    page.get_by_text("Presentation mode").click()
    _settle(page)
    _no_exception(page)
    _shot(page, "12-diversity-presentation")
