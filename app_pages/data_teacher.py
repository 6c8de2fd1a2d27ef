"""Data & teacher: choose a dataset and model, train a teacher in the background, inspect it."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from appkit import style

st.title("Data & teacher")
st.caption("The teacher is the network whose BatchNorm statistics guide synthesis and whose logits are the soft labels.")

style.paint_now("Data & teacher")

# below the title, so it is on screen before the library (torch) loads
from appkit import figures, forms, jobs_ui, runs_view, ui, uploads  # noqa: E402
from appkit.data_cache import dataset, history  # noqa: E402
from appkit.images import class_grid  # noqa: E402
from appkit.paths import ROOT, runs_root  # noqa: E402
from distill_core import runs  # noqa: E402
from distill_core.data import list_datasets  # noqa: E402
from distill_core.models import list_models  # noqa: E402
from distill_core.teacher import TeacherConfig  # noqa: E402


def choose_dataset() -> str:
    names = list(list_datasets())
    col1, col2 = st.columns([1, 2])
    name = col1.selectbox("dataset", names, index=names.index("digits"), key="dt-dataset",
                          help="; ".join(f"{k}: {v}" for k, v in list_datasets().items()))
    path = col2.text_input("folder (optional for fashion-mnist, required for imagefolder)", key="dt-path",
                           help="a directory with the dataset files; fashion-mnist is also found via "
                                "$DISTILL_FASHION_MNIST or /usr/share/datasets/fashion-mnist")
    return f"{name}:{path.strip()}" if path.strip() else name


def show_samples(spec: str) -> None:
    try:
        data = dataset(spec)
    except ValueError as exc:
        st.error(str(exc))
        return
    info = data.info
    cols = st.columns(4)
    cols[0].metric("classes", info.num_classes)
    cols[1].metric("image size", f"{info.channels}×{info.image_size}×{info.image_size}")
    cols[2].metric("train images", f"{len(data.train):,}")
    cols[3].metric("test images", f"{len(data.test):,}")
    import torch

    from distill_core.data import sample_per_class

    g = torch.Generator().manual_seed(0)
    k = min(8, int(torch.bincount(data.train.labels).min()))
    sample = sample_per_class(data.train, k, g)
    st.image(class_grid(sample.images, sample.labels, k, min_tile=40, class_names=info.class_names),
             caption="random training images, one row per class")


def train_form(spec: str) -> None:
    st.subheader("Train a teacher")
    models = list_models()
    c1, c2, c3 = st.columns(3)
    model = c1.selectbox("model", list(models), key="dt-model", help="; ".join(f"{k}: {v}" for k, v in models.items()))
    width = c2.number_input("width (convnet)", 8, 512, 32, step=8, key="dt-width", disabled=model != "convnet")
    depth = c3.number_input("depth (convnet)", 1, 5, 3, key="dt-depth", disabled=model != "convnet")
    values = forms.config_form(TeacherConfig, {"epochs": 12}, "dt-knob", skip=("dataset", "model", "model_args"))
    name = forms.auto_name(f"dt-name-{model}", f"{spec.split(':')[0]}-{model}-teacher")
    if st.button("Train teacher", type="primary", key="dt-train"):
        args = {"width": int(width), "depth": int(depth)} if model == "convnet" else {}
        values = {**values, "dataset": spec, "model": model, "model_args": args}
        if jobs_ui.submit("teacher", TeacherConfig, values, name) is not None:
            st.session_state["dt-selected"] = name
            st.session_state["dt-teacher"] = name  # show the new job below
            st.rerun()


def upload_form() -> None:
    with st.expander("Upload a teacher checkpoint or a dataset archive"):
        ckpt = st.file_uploader(f"teacher checkpoint (.pt, ≤ {uploads.MAX_CHECKPOINT_MB} MB, a distill_core checkpoint)",
                                type=["pt"], key="dt-up-ckpt")
        up_name = st.text_input("name for the uploaded teacher run", value="uploaded-teacher", key="dt-up-name")
        if ckpt is not None and st.button("Import checkpoint", key="dt-up-go"):
            try:
                run_dir = uploads.import_teacher(ckpt.getvalue(), up_name, runs_root())
                st.success(f"imported as run {run_dir.name}")
            except ValueError as exc:
                st.error(f"Refused: {exc}")
        arch = st.file_uploader(f"dataset archive (.zip / .tar.gz, ≤ {uploads.MAX_ARCHIVE_MB} MB): Fashion-MNIST IDX "
                                "files, or train/ and val/ folders of class subfolders", type=["zip", "gz", "tgz", "tar"],
                                key="dt-up-arch")
        data_name = st.text_input("dataset folder name", value="my-dataset", key="dt-up-dname")
        if arch is not None and st.button("Unpack dataset", key="dt-up-unpack"):
            home = Path(os.environ.get("DISTILL_DATA_HOME", ROOT / "data")) / "uploads"
            try:
                target = runs.safe_run_name(data_name, home)
                uploads.unpack_archive(arch.getvalue(), target)
                st.success(f"unpacked; use the dataset spec `{uploads.dataset_spec_for(target)}`")
            except ValueError as exc:
                st.error(f"Refused: {exc}")


def teacher_view() -> None:
    st.subheader("Teachers")
    launched = st.session_state.get("dt-selected")
    teachers = runs_view.teacher_runs() + [r for r in runs.list_runs(runs_root()) if r.state in jobs_ui.ACTIVE
                                           and (runs_view.kind(r) == "teacher" or r.name == launched)]
    names = list(dict.fromkeys(r.name for r in teachers))
    if not names:
        st.info("No teacher yet: train one above, or run the quick start on the Home page.")
        return
    pick = st.session_state.get("dt-selected")
    name = st.selectbox("teacher run", names, index=names.index(pick) if pick in names else 0, key="dt-teacher")
    run_dir = runs_root() / name

    def preview(rd: Path) -> None:
        rows = history(rd)
        if rows:
            ui.chart(figures.accuracy_curve(rows), f"acc-{rd.name}-{len(rows)}", height=380)

    jobs_ui.job_panel(run_dir, key="dt", preview=preview)
    info = runs.load_run(run_dir)
    if info.config:
        st.caption(f"dataset `{info.config.get('dataset')}` · model `{info.config.get('model')}` "
                   f"{info.config.get('model_args') or ''} · seed {info.config.get('seed')}")


spec = choose_dataset()
show_samples(spec)
train_form(spec)
upload_form()
teacher_view()
