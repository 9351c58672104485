"""The split step: a deterministic train/val/test partition of the case list by seed and fractions."""

from __future__ import annotations

import json
import os

import numpy as np

from . import files


def make_split(cases: list[str], seed: int, fractions: dict[str, float]) -> dict[str, list[str]]:
    """Shuffle the sorted case list with `seed` and cut it by `fractions` (train, val, test; summing to 1).

    Every subset gets at least one case when there are at least three; a subset's order is sorted.
    """
    if abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    cases = sorted(cases)
    if len(cases) < 3:
        raise ValueError(f"need at least 3 cases to split into train/val/test, got {len(cases)}: {cases}")
    order = np.random.default_rng(seed).permutation(len(cases))
    n_val = max(1, int(round(fractions["val"] * len(cases))))
    n_test = max(1, int(round(fractions["test"] * len(cases))))
    n_train = len(cases) - n_val - n_test
    if n_train < 1:
        raise ValueError(f"split fractions {fractions} leave no training case out of {len(cases)}")
    picked = [cases[i] for i in order]
    return {
        "train": sorted(picked[:n_train]),
        "val": sorted(picked[n_train:n_train + n_val]),
        "test": sorted(picked[n_train + n_val:]),
    }


def official_split(cases: list[str], official: dict[str, str]) -> dict[str, list[str]]:
    """The dataset's own train/val/test subsets (manifest column `split`), for `split.use_official`."""
    out = {"train": [], "val": [], "test": []}
    for case in sorted(cases):
        subset = official.get(case, "")
        if subset not in out:
            raise ValueError(f"split.use_official: case {case} has no official subset ({subset!r}); "
                             "this source has no official split for it, use fractions instead")
        out[subset].append(case)
    empty = [k for k, v in out.items() if not v]
    if empty:
        raise ValueError(f"split.use_official: the official split of these cases has no {empty} case")
    return out


def split_cases(manifest, split_params: dict) -> dict[str, list[str]]:
    """The pipeline's split from the manifest (a DataFrame): official if `use_official`, else seed and fractions."""
    cases = list(manifest["case"])
    if split_params.get("use_official"):
        return official_split(cases, dict(zip(manifest["case"], manifest["split"])))
    return make_split(cases, int(split_params["seed"]), split_params["fractions"])


def write_split(split: dict[str, list[str]], path: str | os.PathLike) -> None:
    with files.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(split, indent=1) + "\n")


def read_split(path: str | os.PathLike) -> dict[str, list[str]]:
    with open(path) as fh:
        return json.load(fh)
