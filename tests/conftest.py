"""Shared fixtures: the repository root, the real CT fixture in ../shared (skipped where absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REAL_CT = REPO.parent / "shared" / "fixtures" / "real-ct"



@pytest.fixture(scope="session")
def real_ct():
    """(image, labels mapped to our table, affine) of the real CT fixture; skips cleanly without ../shared."""
    import nibabel as nib
    import numpy as np

    img_path, seg_path = REAL_CT / "example_ct_sm.nii.gz", REAL_CT / "example_seg.nii.gz"
    if not img_path.exists() or not seg_path.exists():
        pytest.skip("../shared/fixtures/real-ct is absent")
    img, seg = nib.load(str(img_path)), nib.load(str(seg_path))
    raw = np.asarray(seg.dataobj)
    labels = np.zeros(raw.shape, np.uint8)
    from abdoseg.sources import TOTALSEGMENTATOR_CLASSES  # its labels are TotalSegmentator v2 classes

    for src, dst in TOTALSEGMENTATOR_CLASSES.items():
        labels[raw == src] = dst
    return np.asarray(img.dataobj), labels, img.affine


@pytest.fixture(scope="session")
def synth_cfg():
    from abdoseg.synthetic import SyntheticConfig

    return SyntheticConfig()
