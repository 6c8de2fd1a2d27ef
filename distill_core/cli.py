"""Command line: `python -m distill_core <stage> [flags] --run-dir runs/NAME`.

Each stage's flags are generated from its config dataclass, so `--help` shows every field with its
unit and default, and the CLI, YAML files and the app share one definition. Precedence:
defaults < --config YAML < flags given on the command line.
"""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import sys
import typing
from pathlib import Path
from typing import Any, Callable

from .config import changed_fields, field_default, nested_class, resolve_config

# stage name -> (config class, job function(cfg, run_dir, resume, overwrite) -> metrics, summary)
Stage = tuple[type, Callable[..., dict], str]


def _stages() -> dict[str, Stage]:
    from .teacher import TeacherConfig, run_teacher

    stages: dict[str, Stage] = {
        "teacher": (TeacherConfig, run_teacher, "train a teacher on real data (squeeze), a checkpoint per epoch"),
    }
    from .synthesis.bn_stats import BNStatsConfig, run_bnstats
    from .synthesis.run import run_synthesize
    from .synthesis.synthesize import SynthesisConfig

    stages["bnstats"] = (BNStatsConfig, run_bnstats, "class-conditional BN statistics of a teacher, saved beside it")
    stages["synthesize"] = (SynthesisConfig, run_synthesize,
                            "recover images by BN matching: sre2l | +C | lpld presets, class-wise or cross-class")
    from .synthesis.bilevel import BilevelConfig
    from .synthesis.bilevel_run import run_bilevel
    from .synthesis.text import TextBilevelConfig, run_bilevel_text

    stages["bilevel"] = (BilevelConfig, run_bilevel,
                         "learn images, soft labels and step sizes by unrolled bilevel optimisation (Sucholutsky)")
    stages["bilevel-text"] = (TextBilevelConfig, run_bilevel_text,
                              "bilevel distillation of a text dataset into sentences in embedding space")
    from .labels.expert import ExpertLabelConfig, run_expert_labels
    from .labels.realimages import RealImagesConfig, run_realimages
    from .labels.relabel import RelabelConfig, run_relabel
    from .labels.student import StudentConfig, run_student
    from .pipeline import PipelineConfig, run_pipeline

    stages["realimages"] = (RealImagesConfig, run_realimages, "random real images per class as an image run (baseline)")
    stages["relabel"] = (RelabelConfig, run_relabel, "FKD soft-label store: view parameters + teacher logits")
    stages["student"] = (StudentConfig, run_student, "train a student on images + (pruned) soft labels or hard labels")
    stages["expertlabels"] = (ExpertLabelConfig, run_expert_labels,
                              "fixed expert soft labels softmax(z/T) of a teacher checkpoint, one per image")
    stages["pipeline"] = (PipelineConfig, run_pipeline,
                          "teacher -> sre2l/lpld synthesis -> random real -> relabel -> small sweep, one call")
    return stages


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse_mapping(text: str) -> dict:
    """'{"width": 32}' (JSON) or 'width=32,depth=2' -> dict with numbers parsed."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = item.partition("=")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value.strip()
    return out


def add_config_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of config class `cls`; defaults are SUPPRESSed so only given flags override."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(f"{cls.__name__} fields (also settable in --config YAML)")
    for f in dataclasses.fields(cls):
        kind, origin = hints[f.name], typing.get_origin(hints[f.name])
        default = field_default(f)
        if nested_class(kind) is not None:
            default = changed_fields(default)  # a nested config: the fields that differ from its own defaults
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": help_text, "dest": f.name}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif kind is dict or origin is dict or nested_class(kind) is not None:
            kwargs.update(type=_parse_mapping, metavar="K=V,...")
        elif origin is tuple:
            item = typing.get_args(kind)[0] if typing.get_args(kind) else str
            kwargs.update(nargs="+", type=item if item in (int, float) else str)
        elif kind in (int, float):
            kwargs["type"] = kind
        elif f.metadata.get("choices"):
            kwargs["choices"] = f.metadata["choices"]
        if kind is not bool and any(a in (int, float) for a in typing.get_args(kind)):  # Optional[int]
            kwargs["type"] = next(a for a in typing.get_args(kind) if a in (int, float))
        group.add_argument(_flag(f.name), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distill_core",
        description="Soft-label dataset distillation: teachers, synthesis, soft labels, pruning, students, analyses.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (cls, _, summary) in _stages().items():
        p = sub.add_parser(name, help=summary, description=summary)
        p.add_argument("--run-dir", required=True, type=Path, help="run folder to create (e.g. runs/my-teacher)")
        p.add_argument("--config", type=Path, help="YAML file of config fields; flags given here override it")
        p.add_argument("--resume", action="store_true", help="continue an interrupted run in --run-dir")
        p.add_argument("--overwrite", action="store_true", help="delete an existing --run-dir first")
        add_config_arguments(p, cls)
    runs_p = sub.add_parser("runs", help="list, show or delete runs")
    runs_p.add_argument("action", choices=("list", "show", "delete"), help="what to do")
    runs_p.add_argument("name", nargs="?", help="run name or folder (show/delete)")
    runs_p.add_argument("--root", type=Path, default=None, help="runs directory (default: $DISTILL_RUNS or ./runs)")
    _add_analyse_parser(sub)
    _add_sweep_parser(sub)
    _add_sweep_parser(sub, "expertsweep", "expert-label study: expert epochs x IPC x label transforms x seeds "
                      "on random real images -> results.csv", "ExpertSweepConfig fields: teacher, expert_epochs, ipcs")
    sub.add_parser("models", help="list registered models")
    sub.add_parser("datasets", help="list registered datasets")
    return parser


def _add_analyse_parser(sub: argparse._SubParsersAction) -> None:
    """`analyse` takes several runs and an output folder, so it has its own parser."""
    from .analysis.run import AnalyseConfig

    summary = "similarity, diversity against real data and embeddings of image-set runs, as CSV/JSON"
    p = sub.add_parser("analyse", help=summary, description=summary)
    p.add_argument("--out", "--run-dir", dest="out", type=Path, default=None,
                   help="folder for the tables, a run folder like every stage's (default: <first run>/analysis)")
    p.add_argument("--config", type=Path, help="YAML file of config fields; flags given here override it")
    p.add_argument("--overwrite", action="store_true", help="delete --out (tables and caches) first")
    add_config_arguments(p, AnalyseConfig)


def _add_sweep_parser(sub: argparse._SubParsersAction, name: str = "sweep",
                      summary: str = "label size vs accuracy grid: sources x pruning strategies x ratios x seeds "
                                     "-> results.csv",
                      fields: str = "SweepConfig fields: sources, ratios, ...") -> None:
    """A sweep reads its grid from a spec YAML (`--spec`), so it has its own parser."""
    p = sub.add_parser(name, help=summary, description=summary)
    p.add_argument("--spec", required=True, type=Path, help=f"sweep YAML ({fields})")
    p.add_argument("--run-dir", required=True, type=Path, help="run folder of the sweep (e.g. runs/my-sweep)")
    p.add_argument("--resume", action="store_true", help="continue: skip finished cells, retry failed ones")
    p.add_argument("--overwrite", action="store_true", help="delete an existing --run-dir first")


def _sweep_command(args: argparse.Namespace) -> int:
    from .labels.expert_sweep import ExpertSweepConfig, run_expert_sweep
    from .labels.sweep import SweepConfig, run_sweep

    cls, job = (ExpertSweepConfig, run_expert_sweep) if args.command == "expertsweep" else (SweepConfig, run_sweep)
    metrics = job(resolve_config(cls, args.spec), args.run_dir, resume=args.resume, overwrite=args.overwrite)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def _analyse_command(args: argparse.Namespace) -> int:
    from .analysis.run import AnalyseConfig, run_analyse

    names = {f.name for f in dataclasses.fields(AnalyseConfig)}
    cfg = resolve_config(AnalyseConfig, args.config, {k: v for k, v in vars(args).items() if k in names})
    if not cfg.runs:
        raise ValueError("give the image-set runs to analyse: --runs runs/A runs/B")
    out = args.out or Path(cfg.runs[0]) / "analysis"
    metrics = run_analyse(cfg, out, overwrite=args.overwrite)
    print(json.dumps({"out": str(out), "summary": metrics["summary"], "notes": metrics["notes"]}, indent=2, default=str))
    return 0


def _run_stage_command(args: argparse.Namespace) -> int:
    cls, job, _ = _stages()[args.command]
    field_names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in vars(args).items() if k in field_names}
    cfg = resolve_config(cls, args.config, overrides)
    metrics = job(cfg, args.run_dir, resume=args.resume, overwrite=args.overwrite)
    print(json.dumps(metrics, indent=2, default=str))
    return 0


def _runs_command(args: argparse.Namespace) -> int:
    from . import runs

    if args.action == "list":
        rows = runs.list_runs(args.root)
        if not rows:
            print(f"no runs in {args.root or runs.DEFAULT_ROOT}")
        for r in rows:
            acc = r.metrics.get("test_acc", r.metrics.get("accuracy"))
            acc_txt = f"{acc:.4f}" if isinstance(acc, (int, float)) else "-"
            name, stage, state, msg = (runs.printable(t) for t in (r.name, r.stage, r.state, r.message))
            print(f"{name:32s} {stage:12s} {state:12s} {100 * r.progress:5.1f}%  acc {acc_txt}  {msg}")
        return 0
    if not args.name:
        raise ValueError(f"`runs {args.action}` needs a run name")
    run_dir = runs.resolve_run_dir(args.name, args.root)
    if args.action == "show":
        info = runs.load_run(run_dir)
        print(json.dumps({"name": info.name, "stage": info.stage, "state": info.state, "config": info.config,
                          "metrics": info.metrics, "status": runs.read_status(run_dir)}, indent=2, default=str))
    else:
        runs.delete_run(run_dir, args.root or run_dir.parent)
        print(f"deleted {run_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one command; every failure is one line on stderr (exit 2), the traceback stays in status.json."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _dispatch(args)
    except ValueError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"error: {failure_message(exc)}", file=sys.stderr)
        return 2
    except BaseException as exc:  # jobs.Cancelled (SIGTERM) is one; SystemExit and the rest go on
        from .jobs import Cancelled

        if not isinstance(exc, Cancelled):
            raise
        print(f"cancelled: {exc}", file=sys.stderr)
        return 143


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "runs":
        return _runs_command(args)
    if args.command == "analyse":
        return _analyse_command(args)
    if args.command in ("sweep", "expertsweep"):
        return _sweep_command(args)
    if args.command in ("models", "datasets"):
        from .data import list_datasets
        from .models import list_models

        for name, desc in (list_models() if args.command == "models" else list_datasets()).items():
            print(f"{name:14s} {desc}")
        return 0
    return _run_stage_command(args)


def _one_line(exc: BaseException, limit: int = 400) -> str:
    from .runs import printable

    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = printable(lines[0] if lines else type(exc).__name__)
    return text if len(text) <= limit else text[: limit - 3] + "..."


OS_HINTS = {
    errno.ENOSPC: "no space left on the device; free some space or choose a --run-dir on another disk",
    errno.EDQUOT: "disk quota exceeded; free some space or choose a --run-dir on another disk",
    errno.ENAMETOOLONG: "a file name is too long; use a shorter --run-dir name",
    errno.EACCES: "permission denied; choose a folder you can write to (or fix its permissions)",
    errno.EPERM: "operation not permitted; choose a folder you can write to (or fix its permissions)",
    errno.EROFS: "the file system is read-only; choose a --run-dir on a writable disk",
    errno.ENOENT: "no such file or folder; check the paths given",
    errno.EMFILE: "too many open files; close other programs or raise the limit (ulimit -n)",
}


def os_error_message(exc: OSError) -> str:
    """One line: what failed (the path), and what to change."""
    from .runs import printable

    where = f" ({printable(exc.filename)})" if exc.filename else ""
    hint = OS_HINTS.get(exc.errno, "an operating-system error; check the paths and free space")
    return f"{printable(exc.strerror or type(exc).__name__)}{where}: {hint}"


def failure_message(exc: BaseException) -> str:
    """One line for an error inside the computation (RuntimeError, non-finite losses, ...)."""
    text = _one_line(exc)
    low = text.lower()
    if isinstance(exc, FloatingPointError) or " nan" in low or "inf " in low or "non-finite" in low:
        hint = "the loss became NaN/inf: lower the learning rate or check the input data"
    elif "out of memory" in low:
        hint = "out of memory: lower the batch size, ipc or model width, or use a device with more memory"
    else:
        hint = "check the settings named above; the full traceback is in the run's status.json"
    return f"{type(exc).__name__}: {text} ({hint})"
