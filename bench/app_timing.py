"""Page timings of the app in Chromium: first paint (the page's title drawn) and settled (its script run
finished), on the first visit of each page after a fresh server is up (cold) and on a second visit (warm).

    .venv/bin/python bench/app_timing.py [--runs DIR] [--port 8599] [--repeat 3]

Makes DIR (default: a fresh folder holding one digits quick start, made first with `python -m
distill_core pipeline`, so the analysis pages have something to show), then for every page app.py routes
to (tests/browser_pages.py reads them from app.py): starts `streamlit run app.py` with DISTILL_RUNS=DIR,
waits for /_stcore/health, opens the page at 1600x1000 in a new browser context (no cache) straight from
its address, as a shared link would, then opens it again, and stops the server. So "cold" is what the
first visitor after a server start waits for: the server importing that page's modules (torch, the
analyses) and computing its cached results. The first row is the floor: a bare Streamlit app whose
only line is `st.title`, timed the same way (Chromium loading Streamlit's frontend, the server's first
session); the second is the floor for a page opened from its own address (a bare two-page st.navigation
app, opened at its second page). Every page is timed in --repeat rounds; the table shows the medians (each round's values are
in the JSON). Prints a table and writes bench/results/app_timing.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser_pages import CHROMIUM, CHROMIUM_ARGS, app_pages, time_every_page, timings_table  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "app_timing.json"


BARE_APP = 'import streamlit as st\n\nst.title("A bare Streamlit page")\n'
# the floor for a page opened from its own address: st.navigation routes to a page that is not the default
BARE_NAV_APP = """import streamlit as st


def home():
    st.title("Home")


def second():
    st.title("A second page")


st.navigation([st.Page(home, title="Home", default=True), st.Page(second, title="Second", url_path="second")]).run()
"""


def serve(runs: Path, port: int, app: Path = ROOT / "app.py") -> tuple[subprocess.Popen, float]:
    """The server process and the seconds until its health endpoint answered."""
    env = {**os.environ, "DISTILL_RUNS": str(runs)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while True:
        try:
            if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc, time.perf_counter() - start
        except OSError:
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


def time_pages(runs: Path, port: int, repeat: int) -> tuple[list[dict], list[float]]:
    """Rows of time_every_page, one fresh server and browser context per page and repetition, as the median
    over `repeat` rounds (each round visits every page once, so a burst of load spreads over all of them),
    with each round's values in `*_all`; and the servers' start-up seconds."""
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp())
    bare, bare_nav = folder / "bare.py", folder / "bare_nav.py"
    bare.write_text(BARE_APP)
    bare_nav.write_text(BARE_NAV_APP)
    targets = [({"title": "(bare Streamlit: one st.title)", "url": ""}, bare),
               ({"title": "(bare Streamlit: second page of st.navigation)", "url": "second"}, bare_nav)]
    targets += [(p, ROOT / "app.py") for p in app_pages()]
    rounds: list[list[dict]] = [[] for _ in targets]
    ups = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeat):
            for i, (page_info, app) in enumerate(targets):
                proc, up_s = serve(runs, port, app)
                ups.append(round(up_s, 2))
                try:
                    context = browser.new_context(viewport={"width": 1600, "height": 1000})
                    rounds[i] += time_every_page(context.new_page(), f"http://localhost:{port}", [page_info])
                    context.close()
                finally:
                    stop(proc)
                print(rounds[i][-1], flush=True)
        browser.close()
    return [_median_row(r) for r in rounds], ups


def _median_row(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    out = {k: v for k, v in rows[0].items() if k not in keys}
    out.update({k: round(statistics.median(r[k] for r in rows), 2) for k in keys})
    out.update({f"{k}_all": [r[k] for r in rows] for k in keys})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8599)
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all pages; the table shows medians")
    args = parser.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp()) / "runs"
    if args.runs is None:
        subprocess.run([sys.executable, "-m", "distill_core", "pipeline", "--dataset", "digits", "--run-dir",
                        str(runs / "quickstart-bench")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    load_before = os.getloadavg()[0]
    rows, ups = time_pages(runs, args.port, args.repeat)
    meta = {"server_up_s": ups, "host": platform.node(), "cpus": os.cpu_count(),
            "load_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "command": f"bench/app_timing.py --repeat {args.repeat}", "statistic": f"median of {args.repeat} rounds",
            "cold": "first visit after a fresh server start, new browser context"}
    print(f"servers up in {min(ups):.1f}-{max(ups):.1f} s; load average {meta['load_1min'][0]} before, "
          f"{meta['load_1min'][1]} after")
    print(timings_table([{k: v for k, v in r.items() if not k.endswith("_all")} for r in rows]))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
