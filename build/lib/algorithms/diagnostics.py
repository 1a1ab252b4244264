"""Scalars that tell whether training is healthy (logged, never trained on)."""

from __future__ import annotations

import numpy as np
import torch


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """``1 - Var[target - predicted] / Var[target]`` (NaN when the target is constant)."""
    var = float(np.var(target))
    return float("nan") if var == 0 else 1.0 - float(np.var(target - predicted)) / var


def active_units(features: torch.Tensor) -> torch.Tensor:
    """Share of trunk units that are positive for some sample of a batch (``train/active_units``).

    A ReLU unit that is zero for every input gets no gradient and stays off; when the share
    falls towards 0 the network gives every state the same output. Returned as a 0-d tensor, so
    logging it does not wait for the device.
    """
    return (features.detach() > 0).any(dim=0).float().mean()
