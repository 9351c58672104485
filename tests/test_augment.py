"""Augmentation never mirrors: every kidney voxel stays on its own side; intensity changes keep the labels."""

import numpy as np
import torch

from abdoseg import labels as L
from abdoseg.augment import AugmentSpec, _rotation, augment, mirror, spatial


def _two_kidneys(b=4, n=48):
    lab = torch.zeros(b, n, n, n, dtype=torch.long)
    lab[:, 30:42, 14:34, 12:36] = L.KIDNEY_RIGHT  # RAS+: the patient's right is +x (high first index)
    lab[:, 6:18, 14:34, 12:36] = L.KIDNEY_LEFT
    img = (lab > 0).float()[:, None] * 0.6 + 0.2
    return img, lab


def test_rotations_are_proper():
    angles = torch.rand(64, 3) * 2 - 1
    det = torch.linalg.det(_rotation(angles))
    assert torch.allclose(det, torch.ones(64), atol=1e-5)


def test_every_kidney_voxel_stays_on_its_side():
    spec = AugmentSpec(rotate_deg=15.0, scale=(0.85, 1.15), probability=1.0)
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        img, lab = _two_kidneys()
        _, out = spatial(img, lab, spec, gen)
        for b in range(out.shape[0]):
            right = torch.nonzero(out[b] == L.KIDNEY_RIGHT)[:, 0]
            left = torch.nonzero(out[b] == L.KIDNEY_LEFT)[:, 0]
            assert len(right) and len(left)
            assert right.min() > 24 > left.max(), (right.min(), left.max())


def test_augment_keeps_label_ids_and_shapes():
    img, lab = _two_kidneys()
    gen = torch.Generator().manual_seed(1)
    out_img, out_lab = augment(img, lab, AugmentSpec(probability=1.0), gen)
    assert out_img.shape == img.shape and out_lab.shape == lab.shape
    assert set(np.unique(out_lab.numpy())) <= {0, L.KIDNEY_RIGHT, L.KIDNEY_LEFT}
    assert not torch.equal(out_img, img)


def test_same_generator_seed_same_augmentation():
    img, lab = _two_kidneys()
    a = augment(img, lab, AugmentSpec(), torch.Generator().manual_seed(5))
    b = augment(img, lab, AugmentSpec(), torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_left_right_mirror_swaps_kidney_labels():
    img, lab = _two_kidneys(b=16)
    lab[:, 6:10] = 0  # a smaller left kidney, so that a mirrored patient differs from the original
    img = (lab > 0).float()[:, None] * 0.6 + 0.2
    out_img, out_lab = mirror(img, lab, (0,), torch.Generator().manual_seed(3))
    flipped = 0
    for b in range(out_lab.shape[0]):
        right = torch.nonzero(out_lab[b] == L.KIDNEY_RIGHT)[:, 0]
        left = torch.nonzero(out_lab[b] == L.KIDNEY_LEFT)[:, 0]
        assert right.min() > 24 > left.max()  # whatever was mirrored, label 2 stays on the right (+x)
        flipped += not torch.equal(out_img[b], img[b])
    assert 0 < flipped < 16  # some samples were mirrored, some not


def test_other_mirrors_keep_the_labels():
    img, lab = _two_kidneys(b=8)
    _, out = mirror(img, lab, (1, 2), torch.Generator().manual_seed(4))
    assert (out == L.KIDNEY_RIGHT).sum() == (lab == L.KIDNEY_RIGHT).sum()
    for b in range(8):
        assert torch.nonzero(out[b] == L.KIDNEY_RIGHT)[:, 0].min() > 24
