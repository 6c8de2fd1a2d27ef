"""Compare: two image-set runs side by side (class-wise vs cross-class of one experiment by default)."""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Compare")
st.caption("Two runs side by side: their images per class, within-class similarity with its uncertainty, "
           "accuracy against label compression from the sweeps that used each run, and what differs in their configs.")

style.paint_now("Compare")

# below the title, so it is on screen before the library (torch) loads
from appkit import experiments, figures, results, runs_view, ui  # noqa: E402
from appkit.analysis import analyse_runs, class_intervals, load_set, paired_interval  # noqa: E402
from appkit.images import class_grid  # noqa: E402
from appkit.paths import runs_root  # noqa: E402
from appkit.pickers import pick_experiment  # noqa: E402
from distill_core import runs  # noqa: E402


def _default_pair(names: list[str], exp: experiments.Experiment | None) -> tuple[int, int]:
    """Class-wise (LPLD or +C) vs SRe2L of the chosen experiment; else the first two runs listed."""
    pool = [n for n in (exp.image_sets if exp else []) if n in names]
    method = {n: runs_view.method_of(runs.load_run(runs_root() / n)) for n in pool}
    a = next((n for n in pool if method[n] in ("lpld", "+C")), pool[0] if pool else names[0])
    b = next((n for n in pool if method[n] == "sre2l" and n != a), next((n for n in pool if n != a), None))
    b = b or next(n for n in names if n != a)
    return names.index(a), names.index(b)


def pick() -> tuple[str, str] | None:
    found = runs_view.image_set_runs()
    if len(found) < 2:
        st.info("Compare needs two image-set runs. The quick start on **Home** makes SRe2L, LPLD and random-real "
                "sets on digits in under a minute.")
        st.page_link("app_pages/home.py", label="Go to the quick start")
        return None
    names = sorted(r.name for r in found)
    exp = pick_experiment("cp-exp")
    a, b = _default_pair(names, exp)
    owner = exp.name if exp else None
    if st.session_state.get("cp-owner", "") != owner:  # a new experiment: its pair replaces the choice
        st.session_state["cp-a"], st.session_state["cp-b"] = names[a], names[b]
        st.session_state["cp-owner"] = owner
    c = st.columns(2)
    return c[0].selectbox("run A", names, key="cp-a"), c[1].selectbox("run B", names, key="cp-b")


def grids(a: str, b: str) -> None:
    cols = st.columns(2)
    for col, name in zip(cols, (a, b)):
        art = load_set(runs_root() / name)
        col.markdown(f"**{name}** · {runs_view.method_label(art.method)} · IPC {art.ipc}")
        col.image(class_grid(art.images, art.labels, min(art.ipc, 10), min_tile=24, class_names=art.info.class_names),
                  width="stretch")


def similarity(a: str, b: str) -> None:
    with st.spinner("features and within-class similarity (cached after the first time)..."):
        try:
            result = analyse_runs([str(runs_root() / a), str(runs_root() / b)])
        except ValueError as exc:
            st.warning(f"No similarity comparison: {exc}")
            return
    ci = class_intervals(result, "feat_within")

    def interval(run: str) -> str:
        iv = ci.get(run)
        return f"95% bootstrap interval over {iv.n} classes [{iv.low:.3f}, {iv.high:.3f}]" if iv else \
            "no interval (fewer than 2 classes)"

    items = [(f"{row['run']}: within-class cosine", f"{row['feat_within_mean']:.3f}",
              f"{interval(row['run'])}; between classes {row['feat_between_mean']:.3f}") for row in result.summary]
    try:
        diff = paired_interval(result, a, b, "feat_within")
        items.append((f"A − B (paired over {diff.n} classes)", f"{ui.signed(diff.mean)}",
                      f"95% paired bootstrap interval [{ui.signed(diff.low)}, {ui.signed(diff.high)}]"))
    except ValueError as exc:
        diff = None
        st.caption(f"no paired difference: {exc}")
    ui.metrics(items)
    for row in result.summary:
        st.caption(f"**{row['run']}**: {row['feat_within_mean']:.3f}, {interval(row['run'])}")
    if diff is not None:
        verdict = "the interval excludes 0: the runs differ" if not diff.contains(0.0) else \
            "the interval includes 0: no difference shown at this number of classes"
        st.caption(f"A − B = {ui.signed(diff.mean)}, 95% paired bootstrap interval "
                   f"[{ui.signed(diff.low)}, {ui.signed(diff.high)}]; "
                   f"{verdict}.")
    methods = {r["run"]: r["method"] for r in result.summary}
    ui.chart(figures.per_class_bars(result.per_class, "feat_within", "within-class cosine", methods=methods), "cp-bars",
             height=380)


def accuracy(a: str, b: str) -> None:
    shown, tables = [], []
    for name in (a, b):
        rows, sweeps = experiments.rows_for_run(runs_root() / name)
        if not rows:
            st.caption(f"No sweep used **{name}** as a source, so it has no accuracy curve (launch one on "
                       "**Soft labels**).")
            continue
        shown += [{**r, "run": name} for r in rows]
        for sweep in dict.fromkeys(sweeps):
            all_rows = runs_view.read_csv_rows(runs_view.find_csv(runs_root() / sweep, ("accuracy", "source")))
            keys = {r["source"] for r in rows if r["sweep"] == sweep} | {
                r["source"] for r in all_rows if r.get("method") == results.RANDOM_REAL
                or r.get("strategy") == results.REAL_HARD}
            table = results.accuracy_table([r for r in all_rows if r.get("source") in keys],
                                           experiments.teacher_accuracy(runs_root() / sweep))
            tables.append((name, sweep, table))
    if not shown:
        return
    x = "ratio" if "ratio" in shown[0] else "label_bytes"
    fig = figures.label_curve(shown, x=x, group=("run", "strategy"), title="Student accuracy vs label compression")
    ui.chart(fig, "cp-acc", height=440)
    for name, sweep, table in tables:
        st.markdown(f"**{name}** in sweep `{sweep}` (beside the sweep's random real images)")
        ui.table(table, formats=results.TABLE_FORMATS, key=f"cp-table-{name}-{sweep}")
    st.caption(results.TABLE_HELP)


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
