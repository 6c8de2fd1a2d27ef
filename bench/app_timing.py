"""Page timings of the app in Chromium: first paint (the page's title drawn) and settled (its script run
finished), on the first visit of each page after the server is up (cold) and on a second visit (warm).

    .venv/bin/python bench/app_timing.py [--runs DIR] [--port 8599]

Starts `streamlit run app.py` with DISTILL_RUNS=DIR (default: a fresh folder holding one digits quick
start, made first with `python -m distill_core pipeline`, so the analysis pages have something to
show), waits for /_stcore/health, then opens every page app.py routes to (tests/browser_pages.py
reads them from app.py) at 1600x1000. "cold" includes the server importing each page's modules
(torch, the analyses) and computing cached results for the first time. Prints a table and writes
bench/results/app_timing.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from browser_pages import CHROMIUM, CHROMIUM_ARGS, time_every_page, timings_table  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "app_timing.json"


def serve(runs: Path, port: int) -> tuple[subprocess.Popen, float]:
    """The server process and the seconds until its health endpoint answered."""
    env = {**os.environ, "DISTILL_RUNS": str(runs)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
                             "--server.headless", "true"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while True:
        try:
            if urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc, time.perf_counter() - start
        except OSError:
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=None)
    parser.add_argument("--port", type=int, default=8599)
    args = parser.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp()) / "runs"
    if args.runs is None:
        subprocess.run([sys.executable, "-m", "distill_core", "pipeline", "--dataset", "digits", "--run-dir",
                        str(runs / "quickstart-bench")], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    from playwright.sync_api import sync_playwright

    proc, up_s = serve(runs, args.port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            rows = time_every_page(page, f"http://localhost:{args.port}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    meta = {"server_up_s": round(up_s, 2), "host": platform.node(), "cpus": os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 2), "command": "bench/app_timing.py"}
    print(f"server up in {up_s:.1f} s (load {meta['load_1min']})")
    print(timings_table(rows))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
