"""How the predict, evaluate and render steps run: their params.yaml sections as dataclasses, and their defaults.

The defaults equal params.yaml's values (tests/test_defaults.py holds them to it) and are the `abdoseg` command's
option defaults too, so the CLI, a notebook and the pipeline agree. Nothing heavy is imported here (no torch, no
VTK): the CLI reads these defaults to build its --help.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PredictSpec:
    """How to run inference: the `predict` section of params.yaml."""

    device: str = "auto"
    overlap: float = 0.5
    largest_component: bool = True
    mirror_axes: tuple[int, ...] = ()  # test-time mirroring over these processed (RAS) axes; 0 is left-right
    max_memory_gb: float = 16.0  # a scan whose estimated peak memory is above this is refused before it runs
    sw_batch_size: int = 4  # sliding windows per forward pass (memory and speed only)

    @classmethod
    def from_params(cls, params: dict) -> PredictSpec:
        """The spec of a `predict` section; optional keys it leaves out keep their defaults."""
        return cls(str(params["device"]), float(params["overlap"]), bool(params["largest_component"]),
                   tuple(int(a) for a in params.get("mirror_axes", cls.mirror_axes)),
                   float(params.get("max_memory_gb", cls.max_memory_gb)), int(params["sw_batch_size"]))


@dataclass(frozen=True)
class EvaluateSpec:
    """How predictions are scored: the `evaluate` section of params.yaml."""

    nsd_tolerance_mm: float = 2.0  # surface distance counted as agreement by the normalised surface Dice

    @classmethod
    def from_params(cls, params: dict) -> EvaluateSpec:
        """The spec of an `evaluate` section."""
        return cls(float(params["nsd_tolerance_mm"]))


@dataclass(frozen=True)
class RenderSpec:
    """How each test case's turntable video is drawn: the `render` section of params.yaml."""

    frames: int = 36  # one turn
    fps: int = 12
    size: int = 384  # pixels, square

    @classmethod
    def from_params(cls, params: dict) -> RenderSpec:
        """The spec of a `render` section."""
        return cls(int(params["frames"]), int(params["fps"]), int(params["size"]))
