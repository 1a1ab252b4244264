"""Where tensors live (CPU by default, CUDA when asked for and present) and how many CPU threads
torch uses."""

from __future__ import annotations

import os

import torch


def select_device(device: str = "auto") -> torch.device:
    """``"auto"`` gives CUDA when available, else CPU; ``"cpu"``/``"cuda"``/``"cuda:1"`` are taken as is.

    Raises:
        ValueError: if CUDA is asked for but not available.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available; use device='cpu' or 'auto'")
    return dev


def available_cores() -> int:
    """CPU cores this process may run on (``os.sched_getaffinity`` where the OS has it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def configure_torch(threads: int = 0) -> int:
    """Set torch's CPU threads (0: every core the process may use, never more) and flush
    denormal floats to zero; returns the thread count.

    Denormals appear in Adam's moment estimates when gradients are tiny and make every step
    slower on x86 CPUs; flushing them changes no result that matters.
    """
    cores = available_cores()
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all {cores} available cores), got {threads}")
    n = min(threads, cores) if threads > 0 else cores
    torch.set_num_threads(n)
    torch.set_flush_denormal(True)
    return n
