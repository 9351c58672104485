"""Validation Dice of training variants: everything at params.yaml's values except what each variant sets.

Run after the pipeline's data stage (it reads data/processed and data/splits.json):
    python bench/train_check.py --epochs 10 train.lr=1e-4 train.lr=3e-3
    python bench/train_check.py "model.norm=batch train.val_every=25"
Each argument is one variant: space-separated dotted keys of params.yaml with YAML values. Each trains into a
temporary folder and prints one Markdown row: the best validation Dice (the pipeline's model selection), its
epoch, and the wall time. Test cases are never looked at: they are for the report only.
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

ORGANS = ("liver", "kidney_right", "kidney_left", "spleen")


def apply(params: dict, variant: str) -> dict:
    """A copy of `params` with each `section.key=value` of `variant` set (value parsed as YAML)."""
    out = copy.deepcopy(params)
    for item in variant.split():
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = out
        for name in parents:
            node = node[name]
        if leaf not in node:
            raise SystemExit(f"{key}: not a key of params.yaml")
        node[leaf] = yaml.safe_load(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="*", default=[""], help="e.g. 'train.lr=1e-4 model.norm=batch' ('' = params.yaml)")
    ap.add_argument("--epochs", type=int, help="override train.epochs (validation then runs at the last epoch too)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    params = yaml.safe_load(Path("params.yaml").read_text())
    split = read_split(P.SPLITS)
    print("| variant | steps | best epoch | val Dice liver | kidney_right | kidney_left | spleen | mean | seconds | s/step |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    for variant in args.variants:
        p = apply(params, variant)
        if args.epochs:
            p["train"]["epochs"] = args.epochs
        p["train"]["resume"] = False
        tp = p["train"]
        steps = tp["epochs"] * max(1, tp["patches_per_epoch"] // tp["batch_size"])
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            row = train(p, split["train"], split["val"], P.PROCESSED_IMAGE, P.PROCESSED_LABEL, out, threads=args.threads)
            secs = time.perf_counter() - start
        dice = " | ".join(f"{row[f'dice_{o}']:.3f}" for o in ORGANS)
        print(f"| {variant or 'params.yaml'} | {steps} | {row['epoch']} | {dice} | {row['dice_mean']:.3f} | {secs:.0f} "
              f"| {secs / steps:.2f} |", flush=True)


if __name__ == "__main__":
    main()
