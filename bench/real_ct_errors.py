"""Where kept models go wrong on the bundled real CT (issue #15): reference against predicted voxels per label.

Dice says how much; this says where: which reference organ a false positive takes its voxels from (the spleen drawn
as the left kidney, the liver as the right one), each organ's predicted volume against the reference's, and each
kidney's coronal lean (degrees from the vertical towards the midline, a least-squares line through its axial
sections' centroids) in the reference and in the prediction. Reads the checkpoints that `bench/real_ct_seeds.py
--keep DIR` kept, with the predict defaults; prints Markdown. With `--mean`, it scores the models' mean softmax (window
by window) instead of each: what survives the average is what the training data teaches every seed, not one seed's
luck.

    python bench/real_ct_errors.py /tmp/arm/seed0/best.pt /tmp/arm/seed1/best.pt
    python bench/real_ct_errors.py --mean /tmp/arm/seed*/best.pt
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch
import yaml
from real_ct_seeds import segment_real_ct

from abdoseg import labels as L
from abdoseg import nifti, real_ct
from abdoseg.inference import Model, load_model
from abdoseg.preprocess import to_canonical
from abdoseg.specs import PredictSpec


def confusion(pred: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Voxel counts, rows the reference label (0 background, then the organs), columns the predicted one."""
    n = len(L.ORGANS) + 1
    return np.bincount(ref.astype(np.int64).ravel() * n + pred.astype(np.int64).ravel(), minlength=n * n).reshape(n, n)


class MeanSoftmax(torch.nn.Module):
    """The log of the members' mean softmax, so that the inferer's softmax of it is their mean probability."""

    def __init__(self, nets: list[torch.nn.Module]):
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.stack([torch.softmax(n(x), 1) for n in self.nets]).mean(0).clamp_min(1e-8))


def coronal_lean(mask: np.ndarray, spacing: tuple[float, ...], medial: float, slices: np.ndarray) -> float:
    """Degrees from the vertical, towards the midline (+), of the line through the mask's axial-section centroids
    (x against z in mm on canonical RAS axes; `medial` is -1 where the midline lies towards -x)."""
    x = np.array([np.nonzero(mask[:, :, k])[0].mean() * spacing[0] for k in slices])
    return float(np.degrees(np.arctan(medial * np.polyfit(slices * spacing[2], x, 1)[0])))


def report(name: str, model: Model, scan: real_ct.RealCT, spec: PredictSpec) -> None:
    """The model's Dice, confusion, volumes and kidney leans on the real scan, as Markdown."""
    labels, dice = segment_real_ct(model, scan, scan.image.astype(np.float32), spec)
    m = confusion(labels, scan.labels)
    names = ["background", *L.ORGANS.values()]
    print(f"\n{name}: Dice {' / '.join(f'{d:.3f}' for d in dice.values())}\n")
    print("| reference \\ predicted | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i, row in enumerate(names):
        print(f"| {row} | " + " | ".join(str(int(v)) for v in m[i]) + " |")
    print("\n| organ | predicted / reference voxels | coronal lean, predicted / reference |\n|---|---|---|")
    reference, affine, _ = to_canonical(scan.labels, scan.affine)
    predicted = to_canonical(labels, scan.affine)[0]
    for i, organ in enumerate(names[1:], 1):
        lean = "-"
        if i in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT):
            both = np.nonzero((reference == i).any((0, 1)) & (predicted == i).any((0, 1)))[0]
            medial = -1.0 if i == L.KIDNEY_RIGHT else 1.0  # RAS: the midline lies towards -x of the right kidney
            if len(both) >= 3:
                sp = nifti.spacing(affine)
                lean = (f"{coronal_lean(predicted == i, sp, medial, both):.0f} / "
                        f"{coronal_lean(reference == i, sp, medial, both):.0f} degrees ({len(both)} sections)")
        print(f"| {organ} | {int(m[:, i].sum())} / {int(m[i].sum())} | {lean} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", type=Path, nargs="+")
    ap.add_argument("--mean", action="store_true", help="score the models' mean softmax instead of each")
    args = ap.parse_args()
    spec = PredictSpec.from_params(yaml.safe_load(Path("params.yaml").read_text())["predict"])
    scan = real_ct.load()
    models = [load_model(path, torch.device("cpu")) for path in args.models]
    if args.mean:
        mean = dataclasses.replace(models[0], net=MeanSoftmax([m.net for m in models]).eval())
        report(f"mean softmax of {len(models)} models", mean, scan, spec)
    else:
        for path, model in zip(args.models, models):
            report(str(path), model, scan, spec)


if __name__ == "__main__":
    main()
