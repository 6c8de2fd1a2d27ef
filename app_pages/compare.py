"""Compare: two image-set runs side by side (class-wise vs cross-class by default)."""
from __future__ import annotations

import streamlit as st

from appkit import figures, runs_view, sweep_ui, ui
from appkit.analysis import analyse_runs, load_set
from appkit.images import class_grid
from appkit.paths import runs_root
from distill_core import runs

st.title("Compare")
st.caption("Two runs side by side: their images per class, within-class similarity, accuracy against label "
           "compression, and what differs in their configs.")


def _default_pair(found: list[runs.RunInfo]) -> tuple[int, int]:
    names = [r.name for r in found]
    methods = [runs_view.method_of(r) for r in found]
    a = next((i for i, m in enumerate(methods) if m in ("lpld", "+C")), 0)
    b = next((i for i, m in enumerate(methods) if m == "sre2l" and i != a), 1 if len(names) > 1 and a != 1 else 0)
    return a, b


def pick() -> tuple[str, str] | None:
    found = runs_view.image_set_runs()
    if len(found) < 2:
        st.info("Compare needs two image-set runs. The quick start on **Home** makes SRe2L, LPLD and random-real "
                "sets on digits in about a minute.")
        st.page_link("app_pages/home.py", label="Go to the quick start", icon=":material/rocket_launch:")
        return None
    names = [r.name for r in found]
    a, b = _default_pair(found)
    c = st.columns(2)
    return (c[0].selectbox("run A", names, index=a, key="cp-a"), c[1].selectbox("run B", names, index=b, key="cp-b"))


def grids(a: str, b: str) -> None:
    cols = st.columns(2)
    for col, name in zip(cols, (a, b)):
        art = load_set(runs_root() / name)
        col.markdown(f"**{name}** · {art.method} · IPC {art.ipc}")
        col.image(class_grid(art.images, art.labels, min(art.ipc, 10), min_tile=24), width="stretch")


def similarity(a: str, b: str) -> None:
    try:
        result = analyse_runs([str(runs_root() / a), str(runs_root() / b)])
    except ValueError as exc:
        st.warning(f"No similarity comparison: {exc}")
        return
    cols = st.columns(len(result.summary))
    for col, row in zip(cols, result.summary):
        col.metric(f"{row['run']}: within-class cosine (features)", f"{row['feat_within_mean']:.3f}",
                   help=f"± {row['feat_within_std']:.3f} over classes; between classes {row['feat_between_mean']:.3f}")
    ui.chart(figures.per_class_bars(result.per_class, "feat_within", "within-class cosine"), "cp-bars", height=380)


def accuracy(a: str, b: str) -> None:
    files = sweep_ui.result_files()
    keys = {a, b, *(load_set(runs_root() / n).method for n in (a, b))}
    rows = [r for p in files.values() for r in runs_view.read_csv_rows(p)
            if str(r.get("source")) in keys or str(r.get("method")) in keys]
    if not rows:
        st.caption("No sweep results for these runs yet (accuracy vs compression appears once a sweep covers them).")
        return
    x = "ratio" if "ratio" in rows[0] else "label_bytes"
    group = tuple(g for g in ("source", "strategy") if g in rows[0])
    fig = figures.label_curve(rows, x=x, group=group, title="Student accuracy vs label compression")
    ui.chart(fig, "cp-acc", height=420)


def config_diff(a: str, b: str) -> None:
    ca, cb = runs.load_run(runs_root() / a).config, runs.load_run(runs_root() / b).config
    keys = sorted(set(ca) | set(cb))
    diff = [{"field": k, a: str(ca.get(k)), b: str(cb.get(k))} for k in keys if ca.get(k) != cb.get(k)]
    if diff:
        st.dataframe(diff, hide_index=True, width="stretch")
    else:
        st.caption("identical configs")


pair = pick()
if pair:
    a, b = pair
    st.subheader("Images, one row per class")
    grids(a, b)
    st.subheader("Within-class similarity")
    similarity(a, b)
    st.subheader("Accuracy vs label compression")
    accuracy(a, b)
    st.subheader("Config differences")
    config_diff(a, b)
