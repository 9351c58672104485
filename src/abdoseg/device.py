"""Choosing the torch device that training and inference run on."""

from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    """`auto` means CUDA when present, else CPU; any other name is taken as it is (`cpu`, `cuda`, `cuda:1`)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
