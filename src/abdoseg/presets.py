"""Named parameter presets (workflow/presets/NAME.yaml), selected by `preset: NAME` in params.yaml.

One switch for both tools: `snakemake --config preset=vnet-paper`, `dvc exp run -S preset=vnet-paper`, or an edit of
params.yaml. DVC tracks the `preset` key like any parameter, so a change reruns what it should; Snakemake rules see the
merged sections, so their params triggers fire too. A preset may only set keys that params.yaml has.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

PRESET_DIR = Path("workflow/presets")


def available(folder: str | Path = PRESET_DIR) -> list[str]:
    """Names of the presets in `folder`."""
    return sorted(p.stem for p in Path(folder).glob("*.yaml"))


def _merge(base: dict, over: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            raise ValueError(f"preset key {path} is not a parameter of params.yaml")
        out[key] = _merge(base[key], value, path) if isinstance(value, dict) and isinstance(base[key], dict) else value
    return out


def apply(config: dict, folder: str | Path = PRESET_DIR) -> dict:
    """`config` with the preset it names merged over it (a copy); unchanged when `preset` is null or absent."""
    name = config.get("preset")
    if not name:
        return config
    path = Path(folder) / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"preset {name!r}: no {path}; available: {', '.join(available(folder)) or 'none'}")
    over = yaml.safe_load(path.read_text()) or {}
    try:
        return _merge(config, over, "")
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
