"""Browser helpers shared by tests/test_browser.py and bench/app_timing.py: the pages app.py routes to,
waiting for a page to settle, the requests and console errors of a page, and page timings.

Pages are read from app.py's `st.Page(...)` calls, so a page added there (Expert labels, Learned
labels, ...) is opened, checked and timed with no change here.
"""
from __future__ import annotations

import ast
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCRIPT_STATE = "() => document.querySelector('[data-testid=stApp]')?.getAttribute('data-test-script-state')"
LOCAL = ("http://localhost", "ws://localhost", "http://127.0.0.1", "ws://127.0.0.1", "data:", "blob:", "about:")
# Streamlit probes <page>/_stcore/{health,host-config} on a deep link before the root ones: benign 404s
STREAMLIT_PROBE = re.compile(r"^http://localhost:\d+/[^?#]+/_stcore/(health|host-config)$")


def app_pages(app: Path = ROOT / "app.py") -> list[dict]:
    """Every page app.py routes to: {"title", "path" (the script), "url" ('' for the default page)}."""
    out = []
    for node in ast.walk(ast.parse(app.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "Page" and node.args:
            path = ast.literal_eval(node.args[0])
            kw = {k.arg: k.value for k in node.keywords}
            title = ast.literal_eval(kw["title"]) if "title" in kw else Path(path).stem
            default = "default" in kw and ast.literal_eval(kw["default"]) is True
            out.append({"title": title, "path": path, "url": "" if default else Path(path).stem})
    return out


def settle(page, timeout_s: float = 180) -> None:
    """Wait until the page's script run has finished (stApp's script state) and no spinner is left."""
    page.wait_for_selector("h1", timeout=60_000)
    deadline = time.time() + timeout_s
    quiet = 0
    while time.time() < deadline and quiet < 3:
        idle = page.evaluate(SCRIPT_STATE) not in ("running", "initial", None)
        quiet = quiet + 1 if idle and page.locator("[data-testid='stSpinner']").count() == 0 else 0
        time.sleep(0.3)
    time.sleep(0.8)  # let Plotly finish drawing


class Watch:
    """Requests that leave localhost, failed responses and console errors of one browser page."""

    def __init__(self, page):
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda r: self.outside.append(r.url) if not r.url.startswith(LOCAL) else None)
        page.on("response", lambda r: self.failed.append(r.url) if r.status >= 400 else None)
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))

    def real_errors(self) -> list[str]:
        """Console errors, except the 'failed to load' lines of Streamlit's deep-link probes."""
        benign = self.failed and all(STREAMLIT_PROBE.match(u) for u in self.failed)
        return [e for e in self.errors if not (benign and e.startswith("Failed to load resource"))]


def time_page(page, url: str) -> dict:
    """Open `url`: seconds until its title is painted and until its script run has settled."""
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_selector("h1", timeout=60_000)
    painted = time.perf_counter() - start
    settle(page)
    return {"first_paint_s": round(painted, 2), "settled_s": round(time.perf_counter() - start - 0.8, 2)}


def time_every_page(page, base: str, pages: list[dict] | None = None) -> list[dict]:
    """Each page of app.py opened twice in the same session: cold (first visit) and warm."""
    rows = []
    for p in pages or app_pages():
        cold = time_page(page, f"{base}/{p['url']}")
        warm = time_page(page, f"{base}/{p['url']}")
        rows.append({"page": p["title"], "url": "/" + p["url"], **{f"cold_{k}": v for k, v in cold.items()},
                     **{f"warm_{k}": v for k, v in warm.items()}})
    return rows


def timings_table(rows: list[dict]) -> str:
    cols = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)
