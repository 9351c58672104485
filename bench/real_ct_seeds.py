"""A lever on the real-CT check, judged over several training seeds (issue #15).

One seed's real-CT Dice says little: with nothing changed but the training's random draws, a kidney appears or
vanishes and the spleen moves by 0.2 (docs/benchmarks.md, "Real-CT transfer"). This trains the default network on
the processed data already in data/ (run the data step first: `snakemake --cores all data`) once per seed, with
params.yaml's values and any `section.key=value` overrides, then scores best.pt on the bundled real CT with the
predict defaults, and prints a Markdown row per seed and the mean and sd. The real scan is only scored, never used
to choose a checkpoint. With `--test`, each seed's model is also scored on the split's test phantoms as the evaluate
step scores them (raw grid, mean Dice per organ): the issue's other bar. Nothing here asserts a number.

    python bench/real_ct_seeds.py augment.label_contrast=0.1 augment.domain_probability=0.5 --seeds 0 1 2
    python bench/real_ct_seeds.py --seeds 1 2 3 --test --keep /tmp/arm
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from abdoseg import labels as L
from abdoseg import metrics, nifti, real_ct, train
from abdoseg import paths as P
from abdoseg.inference import Model, load_model
from abdoseg.predict import predict_array
from abdoseg.specs import PredictSpec
from abdoseg.split import read_split


def with_overrides(params: dict, overrides: list[str]) -> dict:
    """params.yaml's dict with `section.key=value` overrides (nested keys too: data.synthetic.n_cases=12; values YAML)."""
    for item in overrides:
        key, value = item.split("=", 1)
        *sections, name = key.split(".")
        node = params
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if not isinstance(node, dict) or name not in node:
            raise SystemExit(f"{key}: no such parameter in params.yaml")
        node[name] = yaml.safe_load(value)
    return params


def segment_real_ct(model: Model, scan: real_ct.RealCT, image: np.ndarray,
                    spec: PredictSpec) -> tuple[np.ndarray, dict[str, float]]:
    """The model's labels for `image` (the bundled scan's, or an altered copy on its grid) and their Dice per organ
    against the scan's reference, on the CPU."""
    labels = predict_array(image, scan.affine, model, torch.device("cpu"), spec)
    result = real_ct.score(labels, scan, tolerance_mm=2.0)
    return labels, {name: result[name]["dice"] for name in L.ORGANS.values()}


def score_real_ct(model_path: Path, spec: PredictSpec) -> dict[str, float]:
    """Dice per organ of the model on the bundled real CT."""
    scan = real_ct.load()
    return segment_real_ct(load_model(model_path, torch.device("cpu")), scan, scan.image.astype(np.float32), spec)[1]


def score_phantom_test(model_path: Path, cases: list[str], spec: PredictSpec) -> dict[str, float]:
    """Mean Dice per organ of the model on phantoms `cases`, predicted from data/raw and scored on their own grid
    (a missing kidney predicted missing scores 1, as in the evaluate step)."""
    model = load_model(model_path, torch.device("cpu"))
    dice: dict[str, list[float]] = {name: [] for name in L.ORGANS.values()}
    for case in cases:
        image, img = nifti.read(P.RAW_IMAGE.format(case=case))
        ref = nifti.read(P.RAW_LABEL.format(case=case))[0]
        pred = predict_array(image.astype(np.float32), img.affine, model, torch.device("cpu"), spec)
        for oid, name in L.ORGANS.items():
            dice[name].append(metrics.dice(pred == oid, ref == oid))
    return {name: statistics.mean(values) for name, values in dice.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--keep", type=Path, help="keep each seed's checkpoints in KEEP/seed<N> (default: thrown away)")
    ap.add_argument("--test", action="store_true", help="also score each model on the split's test phantoms")
    ap.add_argument("overrides", nargs="*", help="section.key=value, e.g. augment.label_contrast=0.1")
    args = ap.parse_args()
    base = with_overrides(yaml.safe_load(Path("params.yaml").read_text()), args.overrides)
    split = read_split(P.SPLITS)
    spec = PredictSpec.from_params(base["predict"])
    names = list(L.ORGANS.values())
    test_col = f" phantom test {' / '.join(names)} |" if args.test else ""
    print(f"| seed | real CT {' / '.join(names)} | real mean | phantom validation mean |{test_col} train s |")
    print("|---|---|---|---|---|" + ("---|" if args.test else ""))
    means = []
    for seed in args.seeds:
        params = yaml.safe_load(yaml.safe_dump(base))
        params["train"]["seed"] = seed
        with tempfile.TemporaryDirectory() as tmp:
            out = str(args.keep / f"seed{seed}") if args.keep else tmp
            start = time.perf_counter()
            best = train.train(params, split["train"], split["val"], P.PROCESSED_IMAGE, P.PROCESSED_LABEL, out,
                               threads=args.threads)
            seconds = time.perf_counter() - start
            dice = score_real_ct(Path(out) / "best.pt", spec)
            test = score_phantom_test(Path(out) / "best.pt", split["test"], spec) if args.test else None
        means.append(statistics.mean(dice.values()))
        test_cell = f" {' / '.join(f'{test[n]:.3f}' for n in names)} |" if test else ""
        print(f"| {seed} | {' / '.join(f'{dice[n]:.3f}' for n in names)} | {means[-1]:.3f} | {best['dice_mean']:.3f} "
              f"|{test_cell} {seconds:.0f} |", flush=True)
    if len(means) > 1:
        print(f"\nreal-CT mean over seeds: {statistics.mean(means):.3f} (sd {statistics.stdev(means):.3f})")


if __name__ == "__main__":
    main()
