"""Where kept models go wrong on the bundled real CT (issue #15): reference against predicted voxels per label.

Dice says how much; this says where: which reference organ a false positive takes its voxels from (the spleen drawn
as the left kidney, the liver as the right one) and each organ's predicted volume against the reference's. Reads the
checkpoints that `bench/real_ct_seeds.py --keep DIR` kept, with the predict defaults; prints Markdown.

    python bench/real_ct_errors.py /tmp/arm/seed0/best.pt /tmp/arm/seed1/best.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml
from real_ct_seeds import segment_real_ct

from abdoseg import labels as L
from abdoseg import real_ct
from abdoseg.inference import load_model
from abdoseg.specs import PredictSpec


def confusion(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Voxel counts, rows the reference label (0 background, then the organs), columns the predicted one."""
    n = len(L.ORGANS) + 1
    return np.bincount(ref.astype(np.int64).ravel() * n + pred.astype(np.int64).ravel(), minlength=n * n).reshape(n, n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="+")
    args = ap.parse_args()
    spec = PredictSpec.from_params(yaml.safe_load(Path("params.yaml").read_text())["predict"])
    scan = real_ct.load()
    names = ["background", *L.ORGANS.values()]
    for path in args.models:
        labels, dice = segment_real_ct(load_model(path, torch.device("cpu")), scan, scan.image.astype(np.float32), spec)
        m = confusion(labels, scan.labels)
        print(f"\n{path}: Dice {' / '.join(f'{d:.3f}' for d in dice.values())}\n")
        print("| reference \\ predicted | " + " | ".join(names) + " |")
        print("|---" * (len(names) + 1) + "|")
        for i, name in enumerate(names):
            print(f"| {name} | " + " | ".join(str(int(v)) for v in m[i]) + " |")
        print("\n| organ | predicted / reference voxels |\n|---|---|")
        for i, name in enumerate(names[1:], 1):
            print(f"| {name} | {int(m[:, i].sum())} / {int(m[i].sum())} |")


if __name__ == "__main__":
    main()
