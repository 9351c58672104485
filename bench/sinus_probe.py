"""Does a model draw a kidney's extent from its renal sinus? A probe on phantoms only (issue #15).

Generates non-contrast whole-abdomen phantoms twice from the same seeds: as drawn, and with every kidney's renal
sinus shrunk (`_Kidney.sinus_size` times `--shrink`, everything else the same), segments both with a trained model and
prints each kidney's Dice and predicted/reference volume. A model that reads a kidney's edge gives both copies the
same size; one that draws kidneys out from the sinus draws the small-sinus copy smaller. No real scan is read, and
nothing here asserts a number (docs/benchmarks.md, "Real-CT transfer", Twelfth session).

    python bench/sinus_probe.py --model results/model/best.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import yaml

from abdoseg import labels as L
from abdoseg import synthetic
from abdoseg.inference import load_model
from abdoseg.metrics import dice
from abdoseg.predict import predict_array
from abdoseg.specs import PredictSpec

KIDNEYS = (L.KIDNEY_RIGHT, L.KIDNEY_LEFT)


def non_contrast_config(params: dict) -> synthetic.SyntheticConfig:
    """The phantom of params.yaml's `data.synthetic`, unenhanced (where the sinus is the kidney's only inner
    contrast), whole abdomens only."""
    return synthetic.SyntheticConfig.from_params({**params, "phase_weights": [1, 0, 0], "slab_fraction": 0.0,
                                                  "fov_cut_fraction": 0.0, "pathology_fraction": 0.0})


def generate(index: int, cfg: synthetic.SyntheticConfig, shrink: float) -> synthetic.Case:
    """Case `index` with every kidney's sinus scaled by `shrink` (1.0: as drawn; the same random draws either way)."""
    original = synthetic._Kidney.__init__

    def smaller_sinus(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.sinus_size *= shrink

    synthetic._Kidney.__init__ = smaller_sinus
    try:
        return synthetic.generate_case(index, cfg)
    finally:
        synthetic._Kidney.__init__ = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a best.pt")
    ap.add_argument("--cases", type=int, nargs="+", default=list(range(500, 506)),
                    help="phantom indices (default 500-505: outside the 120 the pipeline trains and tests on)")
    ap.add_argument("--shrink", type=float, default=0.4, help="factor on every kidney's sinus size")
    args = ap.parse_args()
    torch.set_num_threads(2)
    device = torch.device("cpu")
    params = yaml.safe_load(Path("params.yaml").read_text())
    model, cfg = load_model(args.model, device), non_contrast_config(params["data"]["synthetic"])
    spec = PredictSpec.from_params(params["predict"])
    print(f"| case | kidney | Dice as drawn / sinus x {args.shrink} | predicted/reference volume as drawn / sinus x {args.shrink} |")
    print("|---|---|---|---|")
    for index in args.cases:
        rows = {o: [] for o in KIDNEYS}
        for shrink in (1.0, args.shrink):
            case = generate(index, cfg, shrink)
            pred = predict_array(case.image.astype(np.float32), case.affine, model, device, spec)
            for o in KIDNEYS:
                ref = case.labels == o
                rows[o].append((dice(pred == o, ref), (pred == o).sum() / max(1, int(ref.sum()))))
        for o in KIDNEYS:
            (d0, v0), (d1, v1) = rows[o]
            print(f"| {synthetic.case_name(index)} | {L.ORGANS[o]} | {d0:.3f} / {d1:.3f} | {v0:.2f} / {v1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
