"""Rules between parameters that the JSON schema cannot express, checked before any job runs.

The Snakefile calls `check_or_exit` right after `validate(...)`, so `snakemake -n` already stops with one line
naming the parameter. It checks params.yaml with its preset merged (abdoseg.presets, which refuses a preset key
that params.yaml lacks), and any key that a `--configfile` or `--config` added.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import yaml

from . import presets
from .scan_checks import MAX_EXTENT_MM, MAX_VOXEL_MM

# A patch narrower than this sees no organ whole along that axis (a kidney is about 50 x 60 x 110 mm).
MIN_PATCH_MM = 48.0


class ParamsError(ValueError):
    """A parameter that breaks a cross-field rule: the message starts with its dotted name."""


def unknown_keys(given: dict, reference: dict, prefix: str = "") -> list[str]:
    """Dotted names in `given` that `reference` (params.yaml) does not have; maps under data.local are free."""
    out = []
    for key, value in given.items():
        name = f"{prefix}{key}"
        if key not in reference:
            out.append(name)
        elif isinstance(value, dict) and isinstance(reference[key], dict) and name != "data.local.label_map":
            out.extend(unknown_keys(value, reference[key], f"{name}."))
    return out


def check_params(params: dict, reference: dict | None = None) -> None:
    """Raise ParamsError for the first broken cross-field rule; `reference` (params.yaml) checks the keys."""
    if reference is not None:
        extra = unknown_keys(params, reference)
        if extra:
            raise ParamsError(f"{extra[0]}: not a parameter of params.yaml (a typo, or a preset for another "
                              f"version?); remove it or spell it as params.yaml does")
    depth = int(params["model"]["depth"])
    patch = [int(p) for p in params["train"]["patch_size"]]
    factor = 2 ** depth
    if any(p % factor for p in patch):
        fixed = [max(factor, round(p / factor) * factor) for p in patch]
        raise ParamsError(f"train.patch_size: {patch} must be divisible by 2**model.depth = {factor} (each "
                          f"down-sampling halves it); use e.g. {fixed}")
    devices, batch = int(params["train"]["devices"]), int(params["train"]["batch_size"])
    if batch % devices:
        raise ParamsError(f"train.batch_size: {batch} must be divisible by train.devices = {devices} (each training "
                          f"process takes an equal share of every step's batch); use e.g. {max(1, batch // devices) * devices}")
    split = params["split"]
    total = sum(float(v) for v in split["fractions"].values())
    if not split.get("use_official") and not math.isclose(total, 1.0, abs_tol=1e-6):
        raise ParamsError(f"split.fractions: {split['fractions']} sum to {total:g}, not 1; make train + val + "
                          f"test add up to 1")
    spacing = [float(s) for s in params["preprocess"]["spacing"]]
    extent = [p * s for p, s in zip(patch, spacing)]
    if min(extent) < MIN_PATCH_MM:
        raise ParamsError(f"train.patch_size: {patch} voxels of preprocess.spacing {spacing} mm span "
                          f"{' x '.join(f'{e:g}' for e in extent)} mm, under {MIN_PATCH_MM:g} mm along an axis: no "
                          f"organ fits whole; use more voxels or a coarser spacing")
    if max(spacing) > MAX_VOXEL_MM or max(extent) > MAX_EXTENT_MM:
        raise ParamsError(f"preprocess.spacing: {spacing} mm with train.patch_size {patch} gives a patch of "
                          f"{' x '.join(f'{e:g}' for e in extent)} mm, larger than any CT ({MAX_EXTENT_MM:g} mm) or "
                          f"voxels coarser than {MAX_VOXEL_MM:g} mm; use a finer spacing or a smaller patch")


def check_or_exit(params: dict, reference_path: str = "params.yaml") -> None:
    """What the Snakefile calls: on a broken rule or preset, one line `abdoseg: <parameter>: <problem>`, exit 1."""
    try:
        check_params(presets.apply(params), yaml.safe_load(Path(reference_path).read_text()))
    except ValueError as err:
        print(f"abdoseg: {err}", file=sys.stderr)
        raise SystemExit(1) from None
