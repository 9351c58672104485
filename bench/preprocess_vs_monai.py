"""Issue #5: our resample step against the MONAI transform chain a user would otherwise write, side by side.

Both read the same raw NIfTI files and write the processed image and labels as .npy, one case after another on one
thread (numpy is single-threaded here; torch.set_num_threads(1) for MONAI), in one process, so imports are not
counted. The round trip maps the processed labels back onto the original grid (ours: `invert_labels`; MONAI: the
Compose's own `inverse`) and scores them against the raw labels, organ by organ.

The MONAI chain is LoadImaged, EnsureChannelFirstd, Orientationd('RAS'), Spacingd, CropForegroundd,
ScaleIntensityRanged, with three choices that make it do what our step does:
- Spacingd(scale_extent=True): the grid then has our shape, round(n * spacing / target), and our first voxel
  centre; the default (scale_extent=False) gives round((n - 1) * spacing / target) + 1 voxels, offset by up to
  half a target voxel. align_corners=True only silences MONAI's warning about that pairing: the sampled values
  are the same either way.
- CropForegroundd before ScaleIntensityRanged: the body threshold (-500 HU) lies below the window (-200 HU), so it
  cannot be applied to the windowed image; select_fn keeps, like ours, the largest component above it.
- CropForegroundd(margin=ours in voxels, allow_smaller=True): the box stops at the image's edges, as ours does.

Run alone with `python bench/preprocess_vs_monai.py`; `bench/run.py` calls `bench_preprocess_vs_monai` too.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch
import yaml
from monai.transforms import (Compose, CropForegroundd, EnsureChannelFirstd, LoadImaged, Orientationd,
                              ScaleIntensityRanged, Spacingd)
from monai.utils import TraceKeys
from scipy import ndimage

from abdoseg import ingest, nifti, real_ct
from abdoseg import labels as L
from abdoseg.metrics import dice
from abdoseg.preprocess import Geometry, PreprocessSpec, invert_labels, preprocess_case
from abdoseg.sources import TOTALSEGMENTATOR_CLASSES
from abdoseg.synthetic import SyntheticConfig, generate_case

REAL_CT = real_ct.FOLDER  # the real CT bundled with the package

OURS, MONAI = "abdoseg preprocess_case", "MONAI chain"  # the two methods' names in the tables
T = TypeVar("T")
Case = tuple[Path, Path]  # raw image and label paths


@dataclass
class Result:
    """One method on one dataset: speed, worst round-trip Dice per organ, and the processed array shapes."""

    method: str
    dataset: str
    n_cases: int
    seconds_per_case: float  # median over repeated passes of a pass's time divided by its number of cases
    min_dice: dict[int, float]  # organ ID -> lowest Dice over the cases (NaN where no case has the organ)
    grid_shapes: list[tuple[int, ...]]  # per case, the resampled grid before the crop
    shapes: list[tuple[int, ...]]  # per case, the processed (cropped) image


def median_time(fn: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Median wall time of `repeat` calls of `fn`, and the last call's result."""
    runs, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), out


def min_dice(pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict[int, float]:
    """Per organ, the lowest Dice over (round-tripped, raw) label pairs, cases without the organ left out."""
    out = {}
    for organ in L.ORGANS:
        scores = [dice(rt == organ, raw == organ) for rt, raw in pairs if (raw == organ).any()]
        out[organ] = min(scores) if scores else float("nan")
    return out


def synthetic_cases(raw_dir: Path, n: int, params: dict) -> list[Case]:
    """Write the first `n` default synthetic cases (params.yaml data.synthetic) in the raw layout."""
    cfg = SyntheticConfig.from_params(params["data"]["synthetic"])
    for i in range(n):
        c = generate_case(i, cfg)
        ingest.write_case(raw_dir, f"synthetic_{i:03d}", c.image, c.labels, c.affine, "synthetic")
    return [ingest.raw_paths(raw_dir, f"synthetic_{i:03d}") for i in range(n)]


def real_ct_case(raw_dir: Path, fixture_dir: Path) -> list[Case]:
    """Write the real CT fixture with its TotalSegmentator labels mapped to ours in the raw layout."""
    img = nifti.load(fixture_dir / "example_ct_sm.nii.gz")
    seg = np.asanyarray(nifti.load(fixture_dir / "example_seg.nii.gz").dataobj)
    lut = np.zeros(256, np.uint8)
    for theirs, ours in TOTALSEGMENTATOR_CLASSES.items():
        lut[theirs] = ours
    ingest.write_case(raw_dir, "real_ct", np.asanyarray(img.dataobj), lut[seg], img.affine, "totalsegmentator")
    return [ingest.raw_paths(raw_dir, "real_ct")]


def body_select_fn(threshold: float) -> Callable[[torch.Tensor], np.ndarray]:
    """CropForegroundd's select_fn doing what our `body_box` does: the largest connected component above `threshold`."""

    def select(image: torch.Tensor) -> np.ndarray:
        mask = np.asarray(image) > threshold  # (channels, x, y, z); one channel here
        comps, n = ndimage.label(mask[0])
        if n > 1:
            sizes = np.bincount(comps.ravel())
            sizes[0] = 0
            mask = (comps == int(np.argmax(sizes)))[None]
        return mask

    return select


def monai_chain(spec: PreprocessSpec) -> Compose:
    """The MONAI transforms equivalent to our resample step (see the module docstring for the three choices)."""
    keys = ["image", "label"]
    with warnings.catch_warnings():  # Orientationd announces a future change of its `labels` default
        warnings.simplefilter("ignore", FutureWarning)
        return Compose([
            LoadImaged(keys),
            EnsureChannelFirstd(keys),
            Orientationd(keys, axcodes="RAS"),
            Spacingd(keys, pixdim=spec.spacing, mode=("bilinear", "nearest"), scale_extent=True, align_corners=True),
            CropForegroundd(keys, source_key="image", select_fn=body_select_fn(spec.body_threshold),
                            margin=int(np.ceil(spec.crop_margin_mm / min(spec.spacing))), allow_smaller=True),
            ScaleIntensityRanged("image", a_min=spec.clip[0], a_max=spec.clip[1], b_min=0.0, b_max=1.0, clip=True),
        ])


def bench_ours(cases: list[Case], spec: PreprocessSpec, out_dir: Path, repeat: int, dataset: str) -> Result:
    """Time `preprocess_case` over the cases; round-trip the written labels through `invert_labels`."""

    def one_pass() -> list[Geometry]:
        return [preprocess_case(img, lab, spec, out_dir / f"{i}_image.npy", out_dir / f"{i}_label.npy",
                              out_dir / f"{i}_meta.json") for i, (img, lab) in enumerate(cases)]

    seconds, geoms = median_time(one_pass, repeat)
    pairs = [(invert_labels(np.load(out_dir / f"{i}_label.npy"), g), np.asanyarray(nifti.load(lab).dataobj))
             for i, ((_, lab), g) in enumerate(zip(cases, geoms))]
    return Result(OURS, dataset, len(cases), seconds / len(cases), min_dice(pairs),
                  [tuple(g.processed_shape) for g in geoms],
                  [tuple(b - a for a, b in zip(g.crop_lo, g.crop_hi)) for g in geoms])


def bench_monai(cases: list[Case], spec: PreprocessSpec, out_dir: Path, repeat: int, dataset: str) -> Result:
    """Time the MONAI chain plus np.save over the cases; round-trip the labels through the chain's `inverse`."""
    chain = monai_chain(spec)

    def one_pass() -> list[dict]:
        outs = []
        for i, (img, lab) in enumerate(cases):
            d = chain({"image": str(img), "label": str(lab)})
            np.save(out_dir / f"{i}_image.npy", d["image"][0].numpy())
            np.save(out_dir / f"{i}_label.npy", d["label"][0].numpy().astype(np.uint8))
            outs.append(d)
        return outs

    seconds, outs = median_time(one_pass, repeat)
    grid = [next(tuple(op[TraceKeys.ORIG_SIZE]) for op in d["image"].applied_operations
                 if op[TraceKeys.CLASS_NAME] == "CropForeground") for d in outs]
    pairs = [(chain.inverse(d)["label"][0].numpy().round().astype(np.uint8), np.asanyarray(nifti.load(lab).dataobj))
             for (_, lab), d in zip(cases, outs)]
    return Result(MONAI, dataset, len(cases), seconds / len(cases), min_dice(pairs), grid,
                  [tuple(d["image"].shape[1:]) for d in outs])


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    return ", ".join("x".join(map(str, s)) for s in shapes)


def format_text(results: list[Result]) -> str:
    """A compact fixed-width table for the console; the organ columns are the lowest round-trip Dice over the cases."""
    lines = [f"{'method':<22} {'dataset':<10} {'cases':>5} {'cases/s':>8} {'s/case':>7} "
             + " ".join(f"{'Dice ' + name:>17}" for name in L.ORGANS.values())]
    for r in results:
        lines.append(f"{r.method:<22} {r.dataset:<10} {r.n_cases:>5} {1 / r.seconds_per_case:>8.2f} "
                     f"{r.seconds_per_case:>7.3f} " + " ".join(f"{r.min_dice[o]:>17.3f}" for o in L.ORGANS))
    return "\n".join(lines)


def format_markdown(results: list[Result], repeat: dict[str, int]) -> str:
    """The Markdown block for docs/benchmarks.md: the table and how far the two methods' grids agree."""
    head = " | ".join(f"min Dice {name}" for name in L.ORGANS.values())
    lines = ["### Resample step against the MONAI chain (issue #5)", "",
             "`python bench/preprocess_vs_monai.py` (also part of `make bench`): read NIfTI, write the processed image "
             "and labels as .npy, one thread, in-process (no imports counted); median of "
             + ", ".join(f"{n} passes ({d})" for d, n in repeat.items())
             + ". Round-trip Dice: processed labels mapped back onto the original grid against the raw labels, "
               "lowest over the cases.", "",
             f"| method | data | cases | cases/s | s/case | {head} |", "|---|---|---|---|---|" + "---|" * len(L.ORGANS)]
    for r in results:
        dices = " | ".join(f"{r.min_dice[o]:.3f}" for o in L.ORGANS)
        lines.append(f"| {r.method} | {r.dataset} | {r.n_cases} | {1 / r.seconds_per_case:.2f} | "
                     f"{r.seconds_per_case:.3f} | {dices} |")
    lines.append("")
    by_key = {(r.method, r.dataset): r for r in results}
    for dataset in repeat:
        ours, theirs = by_key[(OURS, dataset)], by_key[(MONAI, dataset)]
        same_grid = sum(a == b for a, b in zip(ours.grid_shapes, theirs.grid_shapes))
        same_crop = sum(a == b for a, b in zip(ours.shapes, theirs.shapes))
        lines.append(f"- {dataset}: resampled grid the same shape in {same_grid} of {ours.n_cases} cases, cropped "
                     f"arrays in {same_crop} of {ours.n_cases} (ours: {_shapes(ours.shapes)}; "
                     f"MONAI: {_shapes(theirs.shapes)}).")
    lines.append("- MONAI: Spacingd(scale_extent=True) for our grid shape and origin (its default gives "
                 "round((n - 1) * spacing / target) + 1 voxels); CropForegroundd before ScaleIntensityRanged, with a "
                 "select_fn keeping the largest component above the body threshold, allow_smaller=True.")
    return "\n".join(lines)


def bench_preprocess_vs_monai(params_path: Path, n_cases: int, real_ct: Path = REAL_CT) -> str:
    """Run both methods on `n_cases` synthetic cases and on the real CT fixture (if present); print the console table
    and return the Markdown block."""
    params = yaml.safe_load(params_path.read_text())
    spec = PreprocessSpec.from_params(params["preprocess"])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            datasets = {"synthetic": (synthetic_cases(tmp / "raw_synthetic", n_cases, params), 3)}
            if (real_ct / "example_ct_sm.nii.gz").exists():
                datasets["real CT"] = (real_ct_case(tmp / "raw_real", real_ct), 5)
            results = []
            for name, (cases, repeat) in datasets.items():
                for method in (bench_ours, bench_monai):
                    out_dir = tmp / f"out_{method.__name__}_{name.replace(' ', '_')}"
                    out_dir.mkdir()
                    results.append(method(cases, spec, out_dir, repeat, name))
    finally:
        torch.set_num_threads(threads)
    print(format_text(results))
    return format_markdown(results, {name: repeat for name, (_, repeat) in datasets.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=6, help="synthetic cases (default 6)")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args()
    print("\n" + bench_preprocess_vs_monai(Path(args.params), args.cases))


if __name__ == "__main__":
    main()
