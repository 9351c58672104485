"""Seaborn figures of the results: per-organ Dice, predicted against reference volume, training curves."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import labels as L  # noqa: E402
from . import files  # noqa: E402

PALETTE = {name: L.COLOURS[oid] for oid, name in L.ORGANS.items()}


def _save(fig: plt.Figure, path: str | os.PathLike) -> None:
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def dice_boxplot(per_case: pd.DataFrame, path: str | os.PathLike) -> None:
    """Per-organ Dice distribution: a box per organ with every case as a point."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    order = [o for o in L.ORGANS.values() if o in set(per_case.organ)]
    sns.boxplot(data=per_case, x="organ", y="dice", order=order, hue="organ", palette=PALETTE, ax=ax, fliersize=0, legend=False)
    sns.stripplot(data=per_case, x="organ", y="dice", order=order, color="black", size=4, jitter=0.15, ax=ax)
    ax.set(ylim=(min(0.5, per_case.dice.min() - 0.05), 1.01), xlabel="", ylabel="Dice (test cases)")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def volume_scatter(per_case: pd.DataFrame, path: str | os.PathLike) -> None:
    """Predicted against reference volume per organ and case, with the identity line."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    sns.scatterplot(data=per_case, x="volume_ref_ml", y="volume_pred_ml", hue="organ", palette=PALETTE, ax=ax, s=30)
    top = float(max(per_case.volume_ref_ml.max(), per_case.volume_pred_ml.max(), 1.0)) * 1.05
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("symlog", linthresh=10)  # log above 10 mL, linear below: a missed organ (0 mL) still shows
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="reference volume (mL)", ylabel="predicted volume (mL)")
    _save(fig, path)


def training_curve(log: pd.DataFrame, path: str | os.PathLike) -> None:
    """Training and validation loss, and per-organ validation Dice, by epoch."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(log.epoch, log.train_loss, label="train")
    val = log.dropna(subset=["val_loss"])
    a.plot(val.epoch, val.val_loss, "o-", label="validation")
    a.set(xlabel="epoch", ylabel="Dice + CE loss")
    a.legend()
    for name in L.ORGANS.values():
        b.plot(val.epoch, val[f"dice_{name}"], "o-", color=PALETTE[name], label=name)
    b.set(xlabel="epoch", ylabel="validation Dice", ylim=(0, 1))
    b.legend(fontsize=8)
    _save(fig, path)
