"""The download step: bring every case of the configured source into data/raw in one layout.

Whatever the source, the result is `images/{case}.nii.gz`, `labels/{case}.nii.gz` (already mapped to the
target label table) and `manifest.tsv` with one row of provenance per case.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import labels as L
from . import nifti, synthetic

MANIFEST_COLUMNS = ["case", "source", "url", "sha256", "spacing", "shape", "axes", "dtype", "annotated", "notes"]


def raw_paths(raw_dir: str | os.PathLike, case: str) -> tuple[Path, Path]:
    """The image and label paths of a case in the raw layout."""
    raw_dir = Path(raw_dir)
    return raw_dir / "images" / f"{case}.nii.gz", raw_dir / "labels" / f"{case}.nii.gz"


def write_case(raw_dir: str | os.PathLike, case: str, image: np.ndarray, labels: np.ndarray, affine: np.ndarray,
               source: str, url: str = "", annotated: list[str] | None = None, notes: list[str] | None = None) -> dict:
    """Write one case in the raw layout (atomically) and return its manifest row."""
    if image.shape != labels.shape:
        raise ValueError(f"case {case}: image shape {image.shape} differs from label shape {labels.shape}")
    unknown = set(np.unique(labels).tolist()) - set(range(L.NUM_CLASSES))
    if unknown:
        raise ValueError(f"case {case}: label values {sorted(unknown)} are not in the label table")
    img_path, lab_path = raw_paths(raw_dir, case)
    nifti.save(image, affine, img_path)
    nifti.save(labels.astype(np.uint8), affine, lab_path)
    return {
        "case": case,
        "source": source,
        "url": url,
        "sha256": nifti.sha256(img_path),
        "spacing": "x".join(f"{s:.4g}" for s in nifti.spacing(affine)),
        "shape": "x".join(str(s) for s in image.shape),
        "axes": nifti.axcodes(affine),
        "dtype": str(image.dtype),
        "annotated": ",".join(annotated if annotated is not None else L.ORGANS.values()),
        "notes": ",".join(notes or []),
    }


def _synthetic_one(args: tuple[str, int, synthetic.SyntheticConfig]) -> dict:
    raw_dir, index, cfg = args
    case = synthetic.generate_case(index, cfg)
    return write_case(raw_dir, synthetic.case_name(index), case.image, case.labels, case.affine,
                      source="synthetic", url=f"synthetic://seed={cfg.seed}/index={index}", notes=case.notes)


def download_synthetic(raw_dir: str | os.PathLike, cfg: synthetic.SyntheticConfig, workers: int = 1) -> pd.DataFrame:
    """Generate the synthetic cases in parallel processes and write the manifest."""
    jobs = [(str(raw_dir), i, cfg) for i in range(cfg.n_cases)]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(tqdm(pool.map(_synthetic_one, jobs), total=len(jobs), desc="synthetic cases", unit="case"))
    else:
        rows = [_synthetic_one(j) for j in tqdm(jobs, desc="synthetic cases", unit="case")]
    return write_manifest(raw_dir, rows)


def write_manifest(raw_dir: str | os.PathLike, rows: list[dict]) -> pd.DataFrame:
    """Write manifest.tsv (sorted by case) atomically and return it."""
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS).sort_values("case").reset_index(drop=True)
    with nifti.atomic_path(Path(raw_dir) / "manifest.tsv") as tmp:
        df.to_csv(tmp, sep="\t", index=False)
    return df


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest.tsv as strings (spacing and shape stay as written)."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def download(raw_dir: str | os.PathLike, data_params: dict, workers: int = 1) -> pd.DataFrame:
    """Run the download step for `data.source`; the one entry point the pipeline calls."""
    source = data_params["source"]
    if source == "synthetic":
        return download_synthetic(raw_dir, synthetic.SyntheticConfig.from_params(data_params.get("synthetic", {})), workers)
    raise ValueError(f"data.source {source!r} is not supported; available: synthetic")
