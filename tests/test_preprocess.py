"""Resampling: canonical orientation without mirroring, label-preserving resize, exact inverse onto the original grid,
and the two intensity normalisations."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from scipy import ndimage

from abdoseg import labels as L
from abdoseg import nifti
from abdoseg.metrics import dice
from abdoseg.intensity import foreground_stats
from abdoseg.preprocess import (PreprocessSpec, _resized_argmax, from_canonical, invert_labels, invert_probabilities, preprocess,
                                resample_labels, resize, uncropped_channels)
from abdoseg.synthetic import SyntheticConfig, generate_case
from conftest import REPO

DEFAULT = PreprocessSpec.from_params(yaml.safe_load((REPO / "params.yaml").read_text())["preprocess"])
SPEC = dataclasses.replace(DEFAULT, spacing=(3.0, 3.0, 3.0))


def _round_trip_dice(image, labels, affine, spec=SPEC):
    _, lab, geom = preprocess(image, affine, spec, labels)
    back = invert_labels(lab, geom)
    assert back.shape == labels.shape and back.dtype == np.uint8
    return {L.ORGANS[o]: dice(back == o, labels == o) for o in L.ORGANS if (labels == o).any()}, lab, geom


def test_resize_matches_torch_trilinear():
    a = np.random.default_rng(0).random((23, 31, 17)).astype(np.float32)
    for size in [(11, 40, 17), (46, 15, 9)]:
        ref = F.interpolate(torch.from_numpy(a)[None, None], size=size, mode="trilinear", align_corners=False)[0, 0]
        np.testing.assert_allclose(resize(a, size), ref.numpy(), atol=1e-5)


def test_label_resize_by_boxes_equals_the_dense_argmax(synth_cfg):
    """resample_labels' per-organ boxes and implicit background give exactly the dense one-hot arg-max."""
    lab = generate_case(1, synth_cfg).labels
    for size in [(61, 57, 40), (23, 29, 71), tuple(s // 2 + 1 for s in lab.shape)]:
        dense = _resized_argmax(((lab == c).astype(np.float32) for c in range(L.NUM_CLASSES)), lab.shape, size)
        np.testing.assert_array_equal(resample_labels(lab, size), dense)


def _whole_grid_inverse(probs, geom):
    """invert_probabilities without its box: every class resized over the whole canonical grid."""
    dense = _resized_argmax(uncropped_channels(probs, geom), tuple(geom.processed_shape), tuple(geom.canonical_shape))
    return from_canonical(dense, np.asarray(geom.original_affine))


@pytest.mark.parametrize("spacing", [(0.8, 0.8, 1.5), (2.0, 3.0, 8.0)])  # upsampled back; z shrunk from 4 mm to 8
def test_inverse_by_the_organs_box_equals_the_whole_grid(spacing):
    """predict inverts only the box of output voxels that read an organ-winning processed voxel; on soft, noisy
    probabilities (blurred organs plus noise: ragged borders, specks, holes) its labels equal the whole grid's
    voxel for voxel, in RAS and LPS, for a grid inverted up and one shrunk along z, and an all-background output."""
    rng = np.random.default_rng(0)
    for axcodes in ("RAS", "LPS"):
        shape = tuple(int(round(n / s)) for n, s in zip((150.0, 120.0, 160.0), spacing))
        img, lab, affine = _six_face_phantom(shape, spacing, axcodes)
        lab[: shape[0] // 3] = 0  # the organs leave a third of the grid to background
        lab[:, :12], lab[:, -12:], img[:, :12], img[:, -12:] = 0, 0, -1000.0, -1000.0  # and air for the crop
        _, processed, geom = preprocess(img, affine, SPEC, lab)
        assert geom.crop_lo[1] > 0 and geom.crop_hi[1] < geom.processed_shape[1]
        soft = np.stack([ndimage.gaussian_filter(c, 1.0) for c in _onehot(processed)])
        logits = 6.0 * soft + rng.normal(0, 0.5, soft.shape).astype(np.float32)
        probs = torch.softmax(torch.from_numpy(logits), 0).numpy()
        winners = probs.argmax(0)
        assert (winners != processed).any()  # specks and holes along the organs' borders: not a clean one-hot
        rows = np.flatnonzero((winners > 0).any((1, 2)))  # and a box smaller than the grid: the organ-free third
        assert rows[0] > 10 or rows[-1] < len(winners) - 11  # stays out of it (at one end in RAS, the other in LPS)
        np.testing.assert_array_equal(invert_probabilities(probs, geom), _whole_grid_inverse(probs, geom))
        background = np.eye(L.NUM_CLASSES, dtype=np.float32)[0][:, None, None, None] * np.ones_like(probs)
        assert not invert_probabilities(background, geom).any()


def test_labels_never_get_new_ids():
    lab = np.zeros((30, 30, 30), np.uint8)
    lab[5:15, 5:25, 5:25] = L.KIDNEY_RIGHT
    lab[15:25, 5:25, 5:25] = L.SPLEEN  # 2 next to 4: linear interpolation of IDs would invent 3
    out = resample_labels(lab, (17, 41, 13))
    assert set(np.unique(out)) <= {0, L.KIDNEY_RIGHT, L.SPLEEN}


def _whole(cfg: SyntheticConfig) -> SyntheticConfig:
    """The phantom without thin slabs: the round-trip bar is about organs, and a slab leaves slivers of them whose
    edge is the grid's own edge (a 4 mm slice more or less at the cut is a large share of a sliver)."""
    return dataclasses.replace(cfg, slab_fraction=0.0)


# The phantom's round-trip bar per organ. The spleen is a thin crescent hollowed where it meets the kidney's fat, with
# the most surface per volume of the four (0.15-0.21 per mm in cases 0-3 against 0.13-0.19 for the kidneys), so a
# grid loses more of it: 0.966-0.990 on the cases below since the kidneys lean (sixteenth session; the redraw gave
# case 2 a spleen at 0.21 per mm on a 1.9 mm grid), where the other organs keep 0.975 or more.
PHANTOM_BAR = {L.LIVER: 0.97, L.KIDNEY_RIGHT: 0.97, L.KIDNEY_LEFT: 0.97, L.SPLEEN: 0.96}


def _below_bar(scores: dict[str, float]) -> dict[str, float]:
    return {name: d for name, d in scores.items() if d < PHANTOM_BAR[L.organ_id(name)]}


@pytest.mark.parametrize("index", range(4))
def test_synthetic_round_trip_keeps_every_organ(index, synth_cfg):
    case = generate_case(index, _whole(synth_cfg))
    scores, _, _ = _round_trip_dice(case.image, case.labels, case.affine)
    assert not _below_bar(scores), (scores, case.notes)


SMALL_ORGANS = {L.KIDNEY_RIGHT: ((38, -20, 0), (17, 19, 30)), L.KIDNEY_LEFT: ((-38, -20, 0), (17, 19, 30)),
                L.LIVER: ((0, 28, 5), (17, 19, 30))}  # centre, semi-axes (mm): small, to fit small grids
REAL_SIZED = {L.KIDNEY_RIGHT: ((55, -30, 0), (25, 28, 50)), L.KIDNEY_LEFT: ((-55, -30, 0), (25, 28, 50)),
              L.LIVER: ((0, 50, 0), (90, 40, 50))}  # kidneys of 147 mL and a 754 mL liver, as in ANATOMY.md


def _phantom(shape, spacing, axcodes, organs=SMALL_ORGANS):
    """Ellipsoid organs in world mm (right kidney at +x, left at -x, liver in front), sampled on a grid stored `axcodes`."""
    spacing = np.asarray(spacing, float)
    origin = -(np.asarray(shape) - 1) / 2 * spacing
    x, y, z = (origin[d] + spacing[d] * np.arange(shape[d]) for d in range(3))
    X, Y, Z = x[:, None, None], y[None, :, None], z[None, None, :]
    ras = np.zeros(shape, np.uint8)
    for organ, ((cx, cy, cz), (rx, ry, rz)) in organs.items():
        ras[((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2 + ((Z - cz) / rz) ** 2 < 1] = organ
    img = np.where(ras > 0, 60.0, -100.0).astype(np.float32)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = origin
    if axcodes == "LPS":
        img, ras = img[::-1, ::-1].copy(), ras[::-1, ::-1].copy()
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [shape[0] - 1, shape[1] - 1, 0]
        affine = affine @ flip
    assert nifti.axcodes(affine) == axcodes
    return img, ras, affine


@pytest.mark.parametrize("axcodes", ["RAS", "LPS"])
@pytest.mark.parametrize("shape,spacing", [((131, 101, 23), (0.9, 0.9, 4.1)), ((51, 47, 61), (2.3, 2.3, 1.7))])
def test_round_trip_ras_lps_anisotropic_odd(axcodes, shape, spacing):
    img, lab, affine = _phantom(shape, spacing, axcodes)
    scores, processed, geom = _round_trip_dice(img, lab, affine)
    assert min(scores.values()) >= 0.96, scores
    # processed arrays are RAS+: the right kidney sits at higher x than the left one, whatever the storage
    assert np.argwhere(processed == L.KIDNEY_RIGHT)[:, 0].mean() > np.argwhere(processed == L.KIDNEY_LEFT)[:, 0].mean()
    # and the processed affine puts each organ where the original one does, in world millimetres
    proc_aff = np.array(geom.processed_affine)
    assert nifti.axcodes(proc_aff) == "RAS"
    assert geom.original_orientation == axcodes and np.allclose(geom.original_spacing, spacing)
    assert np.allclose(geom.spacing, SPEC.spacing, rtol=0.05)
    for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT, L.LIVER):
        w_raw = affine[:3, :3] @ np.argwhere(lab == o).mean(0) + affine[:3, 3]
        w_proc = proc_aff[:3, :3] @ np.argwhere(processed == o).mean(0) + proc_aff[:3, 3]
        assert np.abs(w_raw - w_proc).max() < 1.5, (L.ORGANS[o], w_raw, w_proc)


@pytest.mark.parametrize("index", range(3))
def test_round_trip_at_the_default_spacing(index, synth_cfg):
    """Issue #5's bar at params.yaml's spacing: 0.98 on the real CT (test_real_ct_round_trip); on the phantom
    PHANTOM_BAR, as at 3 mm, since its kidneys carry a hilum open to the front, cysts and drawn proportions whose
    edges a 4 mm grid blurs more (0.969-0.994 on these three cases, the spleen lowest; 0.985-0.99 before the hilum and
    proportions)."""
    case = generate_case(index, _whole(synth_cfg))
    scores, _, _ = _round_trip_dice(case.image, case.labels, case.affine, DEFAULT)
    assert not _below_bar(scores), (scores, case.notes)


@pytest.mark.parametrize("axcodes", ["RAS", "LPS"])
@pytest.mark.parametrize("shape,spacing", [((301, 277, 41), (0.78, 0.78, 3.0)), ((155, 141, 113), (1.9, 1.9, 1.25))])
def test_round_trip_at_the_default_spacing_ras_lps_anisotropic_odd(axcodes, shape, spacing):
    img, lab, affine = _phantom(shape, spacing, axcodes, REAL_SIZED)
    scores, _, _ = _round_trip_dice(img, lab, affine, DEFAULT)
    assert min(scores.values()) >= 0.98, scores


def test_real_ct_round_trip(real_ct):
    image, labels, affine = real_ct
    for spec in (SPEC, DEFAULT):
        scores, _, _ = _round_trip_dice(image, labels, affine, spec)
        assert set(scores) == set(L.ORGANS.values())
        assert min(scores.values()) >= 0.98, (spec.spacing, scores)


def test_percentile_normalisation_uses_training_foreground(synth_cfg, tmp_path):
    """nnU-Net's CT scheme: clip to the organ voxels' percentiles, z-score with their mean and sd."""
    paths = []
    for i in range(2):
        case = generate_case(i, synth_cfg)
        img_p, lab_p = tmp_path / f"{i}_img.nii.gz", tmp_path / f"{i}_lab.nii.gz"
        nifti.save(case.image, case.affine, img_p)
        nifti.save(case.labels, case.affine, lab_p)
        paths.append((str(img_p), str(lab_p), case))
    stats = foreground_stats([p[0] for p in paths], [p[1] for p in paths], (0.5, 99.5))
    organ_hu = np.concatenate([p[2].image[p[2].labels > 0] for p in paths])
    assert -50 < stats["mean"] < 250 and abs(stats["mean"] - organ_hu.mean()) < 5
    assert stats["clip"][0] < np.median(organ_hu) < stats["clip"][1]
    spec = PreprocessSpec.from_params({**yaml.safe_load((REPO / "params.yaml").read_text())["preprocess"],
                                       "normalize": "percentile"}, stats)
    image, _, _ = preprocess(paths[0][2].image, paths[0][2].affine, spec)
    assert image.min() == pytest.approx((stats["clip"][0] - stats["mean"]) / stats["sd"], rel=1e-4)
    assert image.max() == pytest.approx((stats["clip"][1] - stats["mean"]) / stats["sd"], rel=1e-4)
    with pytest.raises(ValueError, match="percentile needs"):
        PreprocessSpec.from_params({"normalize": "percentile", "spacing": [1, 1, 1], "body_threshold": 0, "crop_margin_mm": 0})


def test_crop_comes_from_the_ct_not_the_labels(synth_cfg):
    case = generate_case(0, synth_cfg)
    img_a, _, geom_a = preprocess(case.image, case.affine, SPEC, case.labels)
    img_b, _, geom_b = preprocess(case.image, case.affine, SPEC, None)
    assert (geom_a.crop_lo, geom_a.crop_hi) == (geom_b.crop_lo, geom_b.crop_hi)
    np.testing.assert_array_equal(img_a, img_b)
    assert img_a.min() >= 0 and img_a.max() <= 1


def test_world_geometry_of_real_ct_is_kept(real_ct):
    """At the default grid (2.5 x 2.5 x 4 mm; the scan is stored at 3 mm), the processed affine puts every organ
    where the scan's own affine does: centroids in world mm, computed from the raw labels with the raw affine, agree
    within 1 mm (a half-voxel convention error would move them 1.25-2 mm). The processed array is RAS+ with the
    right kidney at higher x. On the scan's own 3 mm grid, the inverse gives back every voxel."""
    image, labels, affine = real_ct
    _, lab, geom = preprocess(image, affine, DEFAULT, labels)
    proc_aff = np.array(geom.processed_affine)
    assert nifti.axcodes(proc_aff) == "RAS" and not np.allclose(geom.spacing, nifti.spacing(affine))
    for o in L.ORGANS:
        w_raw = affine[:3, :3] @ np.argwhere(labels == o).mean(0) + affine[:3, 3]
        w_proc = proc_aff[:3, :3] @ np.argwhere(lab == o).mean(0) + proc_aff[:3, 3]
        assert np.abs(w_raw - w_proc).max() < 1.0, (L.ORGANS[o], w_raw, w_proc)
    assert np.argwhere(lab == L.KIDNEY_RIGHT)[:, 0].mean() > np.argwhere(lab == L.KIDNEY_LEFT)[:, 0].mean()
    same_grid = dataclasses.replace(SPEC, spacing=nifti.spacing(affine))
    _, lab, geom = preprocess(image, affine, same_grid, labels)
    np.testing.assert_array_equal(invert_probabilities(_onehot(lab), geom), labels)


def _onehot(labels):
    return np.stack([(labels == c).astype(np.float32) for c in range(L.NUM_CLASSES)])


def _six_face_phantom(shape, spacing, axcodes):
    """A liver whose ellipsoid is larger than the field of view (so it touches all six faces), two kidneys inside it,
    in a body that fills the volume (so the crop keeps everything); stored RAS or LPS."""
    organs = {L.LIVER: ((0, 0, 0), tuple(0.62 * n * s for n, s in zip(shape, spacing))),
              L.KIDNEY_RIGHT: ((0.2 * shape[0] * spacing[0], 0, 0), tuple(0.1 * n * s for n, s in zip(shape, spacing))),
              L.KIDNEY_LEFT: ((-0.2 * shape[0] * spacing[0], 0, 0), tuple(0.1 * n * s for n, s in zip(shape, spacing)))}
    img, lab, affine = _phantom(shape, spacing, axcodes, organs)
    return np.where(lab > 0, 60.0, 20.0).astype(np.float32), lab, affine


def _faces(a):
    return {f"axis{d}{end}": np.take(a, 0 if end == "lo" else -1, axis=d) for d in range(3) for end in ("lo", "hi")}


@pytest.mark.parametrize("axcodes", ["RAS", "LPS"])
def test_inverse_is_exact_when_the_grid_does_not_change(axcodes):
    """Target spacing = the scan's: the processed labels are the stored ones reoriented by plain flips (numpy, not
    nibabel), and the inverse gives back every voxel, border slices included."""
    shape, spacing = (41, 37, 23), (2.0, 2.0, 3.0)
    img, lab, affine = _six_face_phantom(shape, spacing, axcodes)
    spec = dataclasses.replace(SPEC, spacing=spacing, crop_margin_mm=0.0)
    _, processed, geom = preprocess(img, affine, spec, lab)
    ras = lab if axcodes == "RAS" else lab[::-1, ::-1]
    np.testing.assert_array_equal(processed, ras)
    np.testing.assert_array_equal(invert_probabilities(_onehot(processed), geom), lab)  # what predict uses
    np.testing.assert_array_equal(invert_labels(processed, geom), lab)


@pytest.mark.parametrize("axcodes", ["RAS", "LPS"])
def test_border_slices_survive_the_round_trip(axcodes):
    """A phantom touching all six faces of its volume, on a grid that changes (0.9 x 0.9 x 4.1 mm -> 3 mm): every
    border slice of the round trip still holds the organ, with the original slice's shape (Dice per face)."""
    shape, spacing = (131, 101, 23), (0.9, 0.9, 4.1)
    img, lab, affine = _six_face_phantom(shape, spacing, axcodes)
    _, processed, geom = preprocess(img, affine, SPEC, lab)
    back = invert_probabilities(_onehot(processed), geom)
    for face, original in _faces(lab).items():
        kept = _faces(back)[face]
        assert (original == L.LIVER).any(), face  # the phantom does touch this face
        assert dice(kept == L.LIVER, original == L.LIVER) > 0.9, face
