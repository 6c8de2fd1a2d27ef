"""Every page draws its title, and lets it reach the browser (`style.paint_now`), before it imports
torch, the library's stages or scikit-learn, so the title is on screen at once even in a fresh server
(bench/app_timing.py measures the paint itself).

Each page of app.py runs in one fresh process after what app.py itself imports: `st.title` records the
heavy modules loaded by then, and `style.paint_now` records them again and stops the page. A heavy
module loaded early stays loaded, so the first page named in a failure is the one to fix.
"""
from __future__ import annotations

import json
import subprocess
import sys

from app_support import APP
from test_app_pages import PAGES

HEAVY = ("torch", "torchvision", "sklearn", "scipy", "umap", "numba", "kaleido", "distill_core")

PROBE = """
import json, runpy, sys
import streamlit as st
import appkit.style  # what every page imports before its title

HEAVY, PAGES = {heavy!r}, {pages!r}
seen = {{}}

class Painted(Exception):
    pass

def loaded():
    return sorted(m for m in HEAVY if m in sys.modules)

def title(*args, **kwargs):
    seen[current] = {{"title": loaded()}}

def paint_now(page):
    seen[current]["paint_now"] = loaded()
    raise Painted

st.title, appkit.style.paint_now = title, paint_now
for current in PAGES:
    try:
        runpy.run_path(current)
    except Painted:
        pass
print(json.dumps(seen))
"""


def test_every_page_draws_its_title_and_lets_it_paint_before_importing_heavy_modules():
    code = PROBE.format(heavy=HEAVY, pages=PAGES)
    out = subprocess.run([sys.executable, "-c", code], cwd=APP.parent, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(seen) == PAGES, f"pages that drew no st.title: {sorted(set(PAGES) - set(seen))}"
    unpainted = [page for page, at in seen.items() if "paint_now" not in at]
    assert not unpainted, f"pages that do not call style.paint_now after their title: {unpainted}"
    late = {page: at for page, at in seen.items() if at["title"] or at["paint_now"]}
    assert not late, f"heavy modules imported before the title (first page listed is the one to fix): {late}"
