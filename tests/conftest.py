"""Shared fixtures: the repository root and the real CT bundled with the package (src/abdoseg/reference_ct)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def real_ct():
    """(image, labels mapped to our table, affine) of the bundled real CT."""
    from abdoseg import real_ct as R

    scan = R.load()
    return scan.image, scan.labels, scan.affine


@pytest.fixture(scope="session")
def synth_cfg():
    from abdoseg.synthetic import SyntheticConfig

    return SyntheticConfig()
