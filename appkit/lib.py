"""Optional parts of `distill_core`: pages ask here whether a stage module is installed.

The library grows stage by stage; a page whose stage is missing says so instead of crashing.
"""
from __future__ import annotations

import importlib
from types import ModuleType

STAGE_MODULES = {
    "synthesize": "image synthesis (SRe2L / +C / LPLD)",
    "bn_stats": "BatchNorm statistics and the teacher sanity check",
    "relabel": "the FKD soft-label store",
    "prune": "label pruning",
    "student": "student training",
    "sweep": "the label-size vs accuracy sweep",
    "realimages": "the random-real-images baseline",
    "pipeline": "the one-click digits pipeline",
    "analyse": "similarity / diversity / embedding analyses",
}


def module(name: str) -> ModuleType | None:
    """`distill_core.<name>`, or None when that module does not exist (other import errors propagate)."""
    try:
        return importlib.import_module(f"distill_core.{name}")
    except ModuleNotFoundError as exc:
        if exc.name in (f"distill_core.{name}", "distill_core"):
            return None
        raise


def missing_message(name: str) -> str:
    """A sentence for a page when `distill_core.<name>` is not available."""
    what = STAGE_MODULES.get(name, name)
    return (f"`distill_core.{name}` ({what}) is not available in this installation, so this part of the page "
            "is switched off. Update the repository to get it.")


def cli_stages() -> set[str]:
    """The subcommands `python -m distill_core` offers (stages registered in cli._stages())."""
    from distill_core import cli

    try:
        return set(cli._stages())
    except Exception:  # a half-installed stage module must not take the app down
        return set()
