"""Soft labels: storage calculator, sweep launcher, label-size vs accuracy curves, one-view inspector."""
from __future__ import annotations

import streamlit as st

from appkit import style

st.title("Soft labels")
st.caption("How many soft labels does a distilled set need? FKD-style stores keep every augmented view's "
           "parameters and teacher logits; pruning keeps a random fraction of the stored batches (Xiao & He 2024).")

style.paint_now("Soft labels")

# below the title, so it is on screen before the library (torch) loads
from appkit import figures, labels_view, runs_view, sweep_ui, ui  # noqa: E402
from appkit.analysis import load_set  # noqa: E402
from appkit.paths import runs_root  # noqa: E402
from distill_core.imageset import tile_images  # noqa: E402

DATASETS = {  # name: (classes, typical IPC)
    "ImageNet-1K": (1000, 200), "Tiny-ImageNet": (200, 50), "CIFAR-100": (100, 50), "CIFAR-10": (10, 50),
    "Fashion-MNIST": (10, 50), "digits": (10, 10), "custom": (10, 10),
}
FACTORS = [1, 2, 5, 10, 20, 40, 100]


def _gib(n: float) -> str:
    return f"{n / 2**30:,.2f} GB" if n >= 2**28 else f"{n / 2**20:,.2f} MB" if n >= 2**18 else f"{n / 2**10:,.1f} kB"


def calculator() -> None:
    from distill_core.labels import prune, relabel

    st.subheader("Storage calculator")
    c = st.columns(4)
    ds = c[0].selectbox("dataset", list(DATASETS), key="sl-ds")
    classes = c[1].number_input("classes C", 2, 100_000, DATASETS[ds][0], key=f"sl-c-{ds}")
    ipc = c[2].number_input("images per class (IPC)", 1, 10_000, DATASETS[ds][1], key=f"sl-ipc-{ds}")
    epochs = c[3].number_input("label epochs E", 1, 5000, 300, key="sl-e", help="300 in SRe2L / LPLD")
    c = st.columns(4)
    batch = c[0].number_input("views per batch B", 1, 4096, 128, key="sl-b")
    dtype = c[1].selectbox("logit dtype", ["fp16", "fp32"], key="sl-dtype")
    topk = c[2].number_input("top-k logits (0 = all)", 0, 100_000, 0, key="sl-topk")
    factor = c[3].select_slider("pruning", FACTORS, value=1, format_func=lambda f: f"{f}×", key="sl-factor")
    ratio = prune.ratio_from_factor(factor)
    try:
        est = relabel.storage_estimate(int(ipc * classes), int(classes), int(epochs), int(batch), ratio,
                                       value_bytes=2 if dtype == "fp16" else 4, topk=int(min(topk, classes)))
    except ValueError as exc:
        st.error(str(exc))
        return
    m = st.columns(4)
    m[0].metric("full label store", _gib(est["full_bytes"]))
    m[1].metric(f"kept at {factor}× ({est['kept_batches']:,} of {est['total_batches']:,} batches)", _gib(est["bytes"]))
    m[2].metric("paper formula N·E·(2C+25)", _gib(est["paper_formula_bytes"]))
    m[3].metric("views stored", f"{est['kept_views']:,}")
    st.caption(f"N = IPC·C = {ipc * classes:,} images. Exact bytes = V·(25 + logit bytes) + NB·36 with V views and NB "
               "batches; GB here means 2³⁰ bytes, as in the paper (ImageNet-1K, IPC 200, E 300, fp16: 113 GB).")


def curves() -> None:
    from appkit import experiments, results
    from appkit.pickers import pick_experiment

    st.subheader("Label size vs accuracy")
    files = sweep_ui.result_files()
    if not files:
        st.info("No sweep results yet. The quick start on **Home** runs a small one on digits; or launch one below.")
        return
    exp = pick_experiment("sl-exp")
    default = [k for k, p in files.items() if exp and any(p.parent.resolve() == s.resolve() for s in exp.sweeps)]
    owner = exp.name if exp else None
    if st.session_state.get("sl-sweeps-owner", "") != owner:  # a new experiment: its sweep replaces the choice
        st.session_state["sl-sweeps"] = default
        st.session_state["sl-sweeps-owner"] = owner
    chosen = st.multiselect("sweep results", list(files), key="sl-sweeps",
                            help="defaults to the chosen experiment's sweep")
    rows = [r for name in chosen for r in runs_view.read_csv_rows(files[name])]
    if not rows:
        return
    c = st.columns(3)
    xs = [x for x in ("ratio", "label_bytes") if x in rows[0]]
    x = c[0].radio("x axis (log)", xs or ["ratio"], horizontal=True, key="sl-x",
                   format_func=lambda v: {"ratio": "compression ×", "label_bytes": "storage (bytes)"}.get(v, v))
    groups = [g for g in ("source", "method", "strategy", "ipc") if g in rows[0]]
    strategies = {r.get("strategy") for r in rows} - {"hard_labels", None}
    default = ["source"] + (["strategy"] if len(strategies) > 1 else [])
    group = c[1].multiselect("one line per", groups, default=[g for g in default if g in groups], key="sl-group")
    ipcs = sorted({r.get("ipc") for r in rows if r.get("ipc") is not None})
    ipc = c[2].selectbox("IPC", ipcs, key="sl-ipc-filter") if len(ipcs) > 1 else None
    shown = [r for r in rows if ipc is None or r.get("ipc") == ipc]
    fig = figures.label_curve(shown, x=x, group=tuple(group) or ("source",))
    ui.chart(fig, "sl-curve", height=460)
    st.caption(f"{len(shown)} cells; mean ± std over seeds (n in the legend); accuracy on the real test set; "
               "dashed lines: hard-label students.")
    for name in chosen:
        sweep_dir = files[name].parent
        table = results.accuracy_table([r for r in runs_view.read_csv_rows(files[name]) if ipc is None
                                        or r.get("ipc") == ipc], experiments.teacher_accuracy(sweep_dir))
        st.markdown(f"**{name}**: accuracy and DD-Ranking")
        ui.table(table, formats=results.TABLE_FORMATS, key=f"sl-table-{name}")
    st.caption(results.TABLE_HELP)


def inspector() -> None:
    st.subheader("Inspector: one stored view and its soft label")
    stores = labels_view.store_dirs()
    if not stores:
        st.info("No label store yet (the quick start makes some).")
        return
    name = st.selectbox("label store", list(stores), key="sl-store")
    run_dir = stores[name]
    images_dir = labels_view.images_dir_of(run_dir)
    if images_dir is None:
        st.warning("The image run this store labels is gone; cannot rebuild its views.")
        return
    art = load_set(images_dir)
    store = labels_view.load_store(run_dir)
    c = st.columns(3)
    batch = c[0].number_input(f"stored batch (0–{store.num_batches - 1})", 0, store.num_batches - 1, 0, key="sl-batch")
    pos = c[1].number_input("view in batch", 0, int(store.batch_len[batch]) - 1, 0, key="sl-pos")
    temp = c[2].number_input("temperature T", 0.1, 100.0, 1.0, key="sl-temp",
                             help="softmax(logits / T); students use T = 20")
    try:
        view = labels_view.inspect_view(store, art.images, art.labels, int(batch), int(pos), float(temp))
    except ValueError as exc:
        st.error(str(exc))
        return
    left, right = st.columns([1, 2])
    left.image(tile_images(view.view[None], 1, min_tile=160), caption=f"view of image #{view.image_index} "
               f"(class {art.info.class_names[view.image_label]}), label epoch {view.batch_epoch}, mix λ {view.lam:.2f}")
    fig = figures.topk_bars(view.probs, art.info.class_names, 5, f"top-5 of softmax(z/{temp:g})")
    ui.chart(fig, "sl-top5", where=right)
    st.caption(f"store: {store.num_views:,} views in {store.num_batches:,} batches, {store.epochs} label epochs, "
               f"{store.nbytes():,} bytes of tensors; images `{images_dir.name}`")
    if run_dir.parent != runs_root():
        st.caption(f"(store of sweep `{run_dir.parent.name}`)")


calculator()
curves()
sweep_ui.launcher()
sweep_ui.running_panel()
inspector()
