"""Saving and loading checkpoints (best.pt, last.pt, resume.pt): CPU tensors and plain values only, loaded safely.

Every checkpoint is written with its tensors on the CPU, so that it loads on a machine without a GPU, and holds
nothing but tensors and plain Python values (numbers, strings, lists, tuples, dicts), so that it loads with
`torch.load(weights_only=True)`: a file that asks to run code when unpickled is refused, never executed. A model
checkpoint is also checked against this code: its label table and its preprocessing spec must be ours.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from . import files
from . import labels as L
from .preprocess import PreprocessSpec

FORMAT = "abdoseg-checkpoint"
VERSION = 1  # bump when the layout of what is saved changes
MODEL_KEYS = ("model_state", "model", "preprocess", "patch_size", "labels")
RESUME_KEYS = ("model_state", "optimiser", "scheduler", "scaler", "epoch", "best", "best_state", "history")


class CheckpointError(ValueError):
    """A checkpoint that cannot or must not be used; the message names the file and the reason, on one line."""


def to_plain(value: object, where: str = "checkpoint") -> object:
    """`value` with every tensor detached and copied to the CPU and numpy values turned into tensors or Python
    numbers; anything else than tensors and plain values is a TypeError naming its place (`where`)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: to_plain(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: a {type(value).__name__} cannot go into a checkpoint (tensors and plain values only)")


def save(obj: dict, path: str | os.PathLike, kind: str) -> None:
    """Write `obj` (kind `model` or `resume`) atomically, tensors on the CPU, with the format marker."""
    plain = to_plain({**obj, "format": FORMAT, "format_version": VERSION, "kind": kind})
    with files.atomic_path(path) as tmp:
        torch.save(plain, tmp)


def _refusal(path: str | os.PathLike, exc: Exception) -> CheckpointError:
    """One line for a file that weights_only loading refuses: what it asked to run, when torch says."""
    wanted = re.search(r"GLOBAL (\S+)", str(exc))
    what = f"it asks to run {wanted.group(1)} when loaded" if wanted else "it holds objects other than tensors and plain values"
    return CheckpointError(f"{path}: refused: {what}; abdoseg loads checkpoints with torch.load(weights_only=True) and never "
                           "runs code from them")


def load(path: str | os.PathLike, kind: str) -> dict:
    """Read a checkpoint of `kind` (`model` or `resume`) safely onto the CPU; CheckpointError when it is not one."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about the pickle protocol of files it then refuses
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _refusal(path, exc) from None
    except Exception as exc:  # a zip or pickle torch cannot read at all
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({first})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not an abdoseg checkpoint (a {type(ckpt).__name__}, not a dict)")
    if ckpt.get("format", FORMAT) != FORMAT or int(ckpt.get("format_version", VERSION)) > VERSION:
        raise CheckpointError(f"{path}: format {ckpt.get('format')!r} version {ckpt.get('format_version')}, this code reads "
                              f"{FORMAT!r} up to version {VERSION}")
    if ckpt.get("kind", kind) != kind:
        raise CheckpointError(f"{path}: a {ckpt['kind']} checkpoint, a {kind} one is needed here")
    missing = [k for k in (MODEL_KEYS if kind == "model" else RESUME_KEYS) if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not an abdoseg {kind} checkpoint (no {', '.join(map(repr, missing))})")
    return ckpt


def _label_difference(table: list[dict]) -> str | None:
    """How a checkpoint's label table differs from ours, or None."""
    theirs = {int(row["id"]): str(row["name"]) for row in table}
    ours = dict(enumerate(L.CLASS_NAMES))
    if theirs == ours:
        return None
    diff = [f"{i}: {theirs.get(i, '-')} there, {ours.get(i, '-')} here" for i in sorted(set(theirs) | set(ours))
            if theirs.get(i) != ours.get(i)]
    return "trained for another label set (" + "; ".join(diff) + ")"


def _preprocess_difference(spec: dict) -> str | None:
    """How a checkpoint's preprocessing spec differs in its fields from this code's PreprocessSpec, or None."""
    ours = {f.name for f in dataclasses.fields(PreprocessSpec)}
    extra, lacking = sorted(set(spec) - ours), sorted(ours - set(spec))
    if not extra and not lacking:
        return None
    parts = ([f"it has {', '.join(extra)}, which this code does not know"] if extra else []) + \
            ([f"it lacks {', '.join(lacking)}"] if lacking else [])
    return "trained with another preprocessing version (" + "; ".join(parts) + ")"


def load_model_checkpoint(path: str | os.PathLike) -> dict:
    """A model checkpoint (best.pt, last.pt) whose labels and preprocessing are this code's; CheckpointError if not."""
    ckpt = load(path, "model")
    for difference in (_label_difference(ckpt["labels"]), _preprocess_difference(ckpt["preprocess"])):
        if difference:
            raise CheckpointError(f"{path}: {difference}")
    return ckpt
