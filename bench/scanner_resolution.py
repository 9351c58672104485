"""Scanner-resolution data through the whole pipeline (issue #16): time and peak memory of every step, per case.

Copies the project into a temporary folder, sets `data.synthetic.resolution: scanner` (512 x 512 pixels of 0.7-0.9 mm,
200-400 slices of 1-3 mm) for `--cases` cases, keeps the default preprocessing, prediction, evaluation and rendering,
and trains the tiny network of tests/tiny_params.yaml (training is not what is measured here). Then it runs
`snakemake --cores N results/report.html` and prints, from Snakemake's own benchmark files (wall seconds and peak
resident memory of each job), a Markdown table per step for docs/benchmarks.md. Nothing here asserts a time.

    python bench/scanner_resolution.py --cases 10 [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
STEPS = ("download", "preprocess", "predict", "evaluate", "render")


def project_copy(root: Path, cases: int) -> None:
    """The project's workflow and params in `root`: default params, scanner-resolution phantoms, tiny training."""
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    for item in ("workflow", "src"):
        shutil.copytree(REPO / item, root / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tiny = yaml.safe_load((REPO / "tests" / "tiny_params.yaml").read_text())
    params["data"]["synthetic"].update(n_cases=cases, seed=1, resolution="scanner")
    params["split"]["fractions"] = {"train": 0.3, "val": 0.2, "test": 0.5}  # half the cases go through predict and render
    params["model"], params["train"] = tiny["model"], {**tiny["train"], "patch_size": [32, 32, 16]}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def table(root: Path) -> pd.DataFrame:
    """One row per step: jobs, wall seconds and peak memory (median and max over its jobs), from results/benchmarks."""
    rows = []
    bench = root / "results" / "benchmarks"
    for step in STEPS:
        files = sorted((bench / step).glob("*.tsv")) if (bench / step).is_dir() else [bench / f"{step}.tsv"]
        frames = [pd.read_csv(f, sep="\t") for f in files if f.exists()]
        if not frames:
            continue
        df = pd.concat(frames)
        rows.append({"step": step, "jobs": len(df), "s median": df["s"].median(), "s max": df["s"].max(),
                     "peak MB median": df["max_rss"].median(), "peak MB max": df["max_rss"].max()})
    return pd.DataFrame(rows)


def per_case(root: Path) -> pd.DataFrame:
    """Seconds and peak GB of each case's job, per step (download is one job for all cases: see `table`)."""
    rows: dict[str, dict[str, str]] = {}
    for step in STEPS[1:]:
        for f in sorted((root / "results" / "benchmarks" / step).glob("*.tsv")):
            b = pd.read_csv(f, sep="\t").iloc[0]
            rows.setdefault(f.stem, {})[step] = f"{b['s']:.1f} s, {b['max_rss'] / 1024:.2f} GB"
    return pd.DataFrame(rows).T.sort_index().reindex(columns=list(STEPS[1:])).fillna("-")


def scans(root: Path) -> pd.DataFrame:
    """The generated scans' sizes: voxels, spacing and file size."""
    out = []
    for path in sorted((root / "data" / "raw" / "images").glob("*.nii.gz")):
        img = nib.load(path)
        out.append({"case": path.name.split(".")[0], "shape": "x".join(map(str, img.shape)),
                    "spacing mm": "x".join(f"{s:.2f}" for s in img.header.get_zooms()[:3]),
                    "MB on disk": round(path.stat().st_size / 1e6, 1)})
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10)
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="abdoseg-scanner-"))
    root.mkdir(parents=True, exist_ok=True)
    project_copy(root, args.cases)
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    start = time.perf_counter()
    subprocess.run(["snakemake", "--cores", str(args.cores), "results/report.html"], cwd=root, env=env, check=True)
    print(f"\nwhole run: {time.perf_counter() - start:.0f} s with {args.cores} cores\n")
    print(scans(root).to_markdown(index=False), "\n")
    print(table(root).to_markdown(index=False, floatfmt=".1f"), "\n")
    print(per_case(root).to_markdown())
    if args.keep is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
