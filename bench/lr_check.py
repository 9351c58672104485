"""Validation Dice after a fixed number of steps for several learning rates, everything else at the defaults.

Run after the pipeline's data stage (it reads data/processed and data/splits.json):
    python bench/lr_check.py --epochs 10 --lr 1e-4 3e-3
It trains into a temporary folder and prints one Markdown row per learning rate.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import yaml

from abdoseg import paths as P
from abdoseg.split import read_split
from abdoseg.train import train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, nargs="+", default=[1e-4, 3e-3])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    split = read_split(P.SPLITS)
    steps = args.epochs * (params["train"]["patches_per_epoch"] // params["train"]["batch_size"])
    print(f"| lr | steps | val Dice liver | kidney_right | kidney_left | spleen | mean | seconds |\n|---|---|---|---|---|---|---|---|")
    for lr in args.lr:
        p = copy.deepcopy(params)
        p["train"].update(lr=lr, epochs=args.epochs, val_every=args.epochs, resume=False)
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            row = train(p, split["train"], split["val"], P.PROCESSED_IMAGE, P.PROCESSED_LABEL, out, threads=args.threads)
            secs = time.perf_counter() - t
        dice = " | ".join(f"{row[f'dice_{o}']:.3f}" for o in ("liver", "kidney_right", "kidney_left", "spleen"))
        print(f"| {lr:g} | {steps} | {dice} | {row['dice_mean']:.3f} | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
