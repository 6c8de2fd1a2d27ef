"""Every page the router registers loads without an exception, with no runs and with the demo runs.

The page list is read from app.py itself (every `st.Page("...")`), so a page added there later is
covered here without editing this file.
"""
from __future__ import annotations

import ast

import pytest
from app_support import APP, app_at


def registered_pages() -> list[str]:
    """The first argument of every `st.Page(...)` call in app.py, in order."""
    pages = []
    for node in ast.walk(ast.parse(APP.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "Page":
            first = node.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str), ast.dump(first)
            pages.append(first.value)
    return pages


PAGES = registered_pages()


def test_the_router_registers_page_files_that_exist():
    assert len(PAGES) >= 8 and "app_pages/home.py" in PAGES
    missing = [p for p in PAGES if not (APP.parent / p).is_file()]
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_without_runs(page, runs_root):
    app_at(page)  # asserts that no exception was raised


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_with_the_demo_runs(page, app_env):
    at = app_at(page)
    assert at.title, f"{page} shows no title"
