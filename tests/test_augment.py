"""Augmentation never mirrors: every kidney voxel stays on its own side; intensity changes keep the labels."""

import numpy as np
import torch

from abdoseg import labels as L
from abdoseg.augment import AugmentSpec, _rotation, augment, spatial


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
