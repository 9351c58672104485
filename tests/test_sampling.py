"""Class-balanced patches: the small kidneys are seen as often as the liver."""

import numpy as np

from abdoseg import labels as L
from abdoseg.sampling import PatchSampler, organ_index


def test_every_organ_is_seen_and_small_ones_often():
    lab = np.zeros((120, 100, 90), np.uint8)
    lab[10:90, 10:90, 10:80] = L.LIVER  # large
    lab[100:108, 40:48, 40:48] = L.KIDNEY_RIGHT  # tiny
    lab[95:103, 88:96, 20:28] = L.KIDNEY_LEFT
    lab[100:110, 10:20, 70:80] = L.SPLEEN
    img = lab.astype(np.float32) / 4
    sampler = PatchSampler([img], [lab], (24, 24, 24), 1.0, organ_index([lab], np.random.default_rng(0)))
    rng = np.random.default_rng(0)
    seen = {o: 0 for o in L.ORGANS}
    for _ in range(200):
        x, y = sampler.sample(rng)
        assert x.shape == (1, 24, 24, 24) and y.shape == (24, 24, 24)
        for o in L.ORGANS:
            seen[o] += bool((y == o).any())
    for o in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT, L.SPLEEN):
        assert seen[o] >= 40, seen  # ~1/4 of patches are centred on each organ


def test_patches_at_the_edge_are_padded():
    lab = np.zeros((10, 10, 10), np.uint8)
    lab[0, 0, 0] = L.SPLEEN
    sampler = PatchSampler([np.ones((10, 10, 10), np.float32)], [lab], (16, 16, 16), 1.0, organ_index([lab], np.random.default_rng(1)))
    x, y = sampler.sample(np.random.default_rng(1))
    assert x.shape == (1, 16, 16, 16) and x.min() == 0.0 and x.max() == 1.0
