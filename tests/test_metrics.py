"""Metrics: hand-computed cases, the empty-organ conventions, the area-weighted NSD, agreement with MONAI and numpy."""

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage

from abdoseg.metrics import dice, hd95, organ_metrics, surface_dice


def test_dice_by_hand():
    a = np.zeros((10, 10, 10), bool)
    b = np.zeros_like(a)
    a[0:4] = True  # 400 voxels
    b[2:6] = True  # 400 voxels, 200 shared
    assert dice(a, b) == pytest.approx(2 * 200 / 800)
    assert dice(a, a) == 1.0


def test_empty_organ_conventions():
    empty = np.zeros((8, 8, 8), bool)
    full = empty.copy()
    full[2:5, 2:5, 2:5] = True
    both = organ_metrics(empty.astype(np.uint8), empty.astype(np.uint8), 1, (1, 1, 1), 2.0)
    assert both["dice"] == 1.0 and both["nsd"] == 1.0 and both["hd95"] == 0.0 and both["both_empty"]
    missed = organ_metrics(empty.astype(np.uint8), full.astype(np.uint8), 1, (1, 1, 1), 2.0)
    assert missed["dice"] == 0.0 and missed["nsd"] == 0.0 and np.isnan(missed["hd95"]) and not missed["both_empty"]
    spurious = organ_metrics(full.astype(np.uint8), empty.astype(np.uint8), 1, (1, 1, 1), 2.0)
    assert spurious["dice"] == 0.0 and spurious["volume_ref_ml"] == 0.0


def test_hd95_by_hand():
    # two slabs 3 voxels apart along z with spacing 2 mm: every surface point is 6 mm from the other surface
    a = np.zeros((6, 6, 20), bool)
    b = np.zeros_like(a)
    a[:, :, 2:5] = True
    b[:, :, 5:8] = True
    assert hd95(a, a, (1, 1, 2)) == 0.0
    assert hd95(a, b, (1, 1, 2.0)) == pytest.approx(6.0)
    assert surface_dice(a, b, (1, 1, 2.0), 5.9) < surface_dice(a, b, (1, 1, 2.0), 6.1) == 1.0


def _blobs(seed):
    rng = np.random.default_rng(seed)
    ref = ndimage.gaussian_filter(rng.random((40, 36, 30)), 3) > 0.5
    pred = ndimage.binary_dilation(ref, iterations=1) if seed % 2 else ndimage.shift(ref.astype(float), (1, -2, 1), order=0) > 0.5
    return pred, ref


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_agrees_with_monai(seed):
    pred, ref = _blobs(seed)
    spacing = (0.8, 0.8, 2.5)
    p = torch.from_numpy(pred)[None, None].float()
    r = torch.from_numpy(ref)[None, None].float()
    monai_hd = float(compute_hausdorff_distance(p, r, include_background=True, percentile=95, spacing=spacing))
    monai_nsd = float(compute_surface_dice(torch.cat([1 - p, p], 1), torch.cat([1 - r, r], 1), [2.0], spacing=spacing,
                                           use_subvoxels=True))  # the published NSD, on the whole volume
    monai_dice = float(compute_dice(p, r, include_background=True))
    assert dice(pred, ref) == pytest.approx(monai_dice, abs=1e-6)
    assert hd95(pred, ref, spacing) == pytest.approx(monai_hd, rel=1e-4, abs=1e-4)
    assert surface_dice(pred, ref, spacing, 2.0) == pytest.approx(monai_nsd, abs=1e-4)


@pytest.mark.parametrize("spacing,box,shift", [((2.0, 2.0, 0.5), (10, 10, 80), 8), ((0.5, 0.5, 2.0), (40, 40, 20), 2)])
def test_nsd_weights_surface_by_area(spacing, box, shift):
    """A box against itself shifted along z, on anisotropic voxels: the NSD is the share of surface AREA within the
    tolerance, computed here from the continuous geometry. Counting boundary voxels instead (the old column) is off
    by 0.1-0.2 on these grids; marching-cubes surface elements are off by < 0.01 (bevelled box edges)."""
    tol = 3.0
    shape = tuple(b + 2 * shift + 4 for b in box)
    ref = np.zeros(shape, bool)
    ref[2:2 + box[0], 2:2 + box[1], 2:2 + box[2]] = True
    pred = np.roll(ref, shift, 2)
    x, y, z = (b * s for b, s in zip(box, spacing))
    s = shift * spacing[2]
    assert s > tol  # so no point of a z-face lies within tol of the other box's parallel face
    within_side = 2 * (x + y) * (z - s + tol)  # side faces coincide, plus a band of height tol past the other box's end
    within_zface = x * y - (x - 2 * tol) * (y - 2 * tol)  # the z-face inside the other box: a band tol wide along its edges
    expected = within_side + within_zface  # per box; the same for both by symmetry
    assert surface_dice(pred, ref, spacing, tol) == pytest.approx(expected / (2 * (x + y) * z + 2 * x * y), abs=0.01)


def test_perfect_prediction_scores_one_everywhere(real_ct):
    _, labels, affine = real_ct
    spacing = tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(0)))
    for organ in (1, 2, 3, 4):
        m = organ_metrics(labels, labels, organ, spacing, 2.0)
        assert (m["dice"], m["nsd"], m["hd95"]) == (1.0, 1.0, 0.0)
        assert m["volume_pred_ml"] == m["volume_ref_ml"] > 0


def _brute_force_hd95(a, b, spacing):
    """HD95 from explicit point sets and all pairwise distances: slow, obvious, independent."""
    st = ndimage.generate_binary_structure(3, 1)
    pa = np.argwhere(a & ~ndimage.binary_erosion(a, st, border_value=0)) * np.asarray(spacing)
    pb = np.argwhere(b & ~ndimage.binary_erosion(b, st, border_value=0)) * np.asarray(spacing)

    def nearest(p, q):  # distance from each point of p to the closest point of q, in blocks to bound memory
        return np.concatenate([np.sqrt(((p[i:i + 500, None, :] - q[None]) ** 2).sum(-1)).min(1) for i in range(0, len(p), 500)])

    ab, ba = nearest(pa, pb), nearest(pb, pa)
    return max(np.percentile(ab, 95), np.percentile(ba, 95))


def test_real_ct_one_voxel_shift_matches_numpy(real_ct):
    _, labels, affine = real_ct
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(0)))
    shifted = np.zeros_like(labels)
    shifted[1:] = labels[:-1]  # one voxel along the first axis
    for organ in (1, 2, 3, 4):
        a, b = shifted == organ, labels == organ
        expected = 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
        m = organ_metrics(shifted, labels, organ, spacing, 2.0)
        assert m["dice"] == pytest.approx(expected)
        assert m["volume_ref_ml"] == pytest.approx(b.sum() * np.prod(spacing) / 1000)
        assert m["hd95"] == pytest.approx(_brute_force_hd95(a, b, spacing), abs=1e-6)
        one_hot = lambda m: torch.from_numpy(np.stack([~m, m]))[None]  # noqa: E731 MONAI on the whole scan, no crop
        whole = float(compute_surface_dice(one_hot(a), one_hot(b), [2.0], spacing=list(spacing), use_subvoxels=True)[0, 0])
        assert m["nsd"] == pytest.approx(whole, abs=1e-6)
