"""data/raw/manifest.tsv: one row of provenance per ingested case, read by split, evaluate and the report."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from . import files

COLUMNS = ["case", "source", "url", "sha256", "spacing", "shape", "axes", "dtype", "annotated", "split", "notes"]


def write_manifest(raw_dir: str | os.PathLike, rows: list[dict]) -> pd.DataFrame:
    """Write manifest.tsv (sorted by case) atomically and return it."""
    df = pd.DataFrame(rows, columns=COLUMNS).sort_values("case").reset_index(drop=True)
    with files.atomic_path(Path(raw_dir) / "manifest.tsv") as tmp:
        df.to_csv(tmp, sep="\t", index=False)
    return df


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest.tsv as strings (spacing and shape stay as written)."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
