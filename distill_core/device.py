"""Device, generator and mixed-precision choices. Only entry points call these."""
from __future__ import annotations

import contextlib

import torch

AMP_MODES = ("off", "bf16")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU raises ValueError."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed` (all randomness in stages flows from it)."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on the device when amp == 'bf16', else a no-op."""
    if amp not in AMP_MODES:
        raise ValueError(f"amp must be one of {AMP_MODES}, got {amp!r}")
    if amp == "off":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def free_memory(device: torch.device | str) -> int:
    """Free bytes on `device`: free GPU memory, or MemAvailable of /proc/meminfo on CPU (8 GiB if unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as fh:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in fh if line.strip()}
        return int(info["MemAvailable"])
    except (OSError, KeyError, ValueError, IndexError):
        return 8 << 30


def require_memory(nbytes: int, device: torch.device | str, what: str, change: str) -> None:
    """ValueError with the estimate when `what` needs more than the free memory of `device`."""
    free = free_memory(device)
    if nbytes > free:
        raise ValueError(f"{what} needs about {nbytes / 2**30:.2f} GiB of memory but only {free / 2**30:.2f} GiB "
                         f"is free on {torch.device(device)}; {change}")
