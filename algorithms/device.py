"""Where tensors live: CPU by default, CUDA when asked for and present."""

from __future__ import annotations

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
