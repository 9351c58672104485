"""Class-balanced patch sampling from memory-mapped processed cases: every organ is seen, the small kidneys too."""

from __future__ import annotations

import numpy as np

from . import labels as L


def organ_index(labels: list[np.ndarray], rng: np.random.Generator, max_index: int = 20000) -> list[dict[int, np.ndarray]]:
    """Per case, per organ it has: the (N, 3) coordinates of up to `max_index` of its voxels (a random subsample,
    in scan order). Built once, in the process that starts training; the samplers of every worker share it."""
    index = []
    for lab in labels:
        per_class = {}
        arr = np.asarray(lab)
        for c in L.ORGANS:
            where = np.argwhere(arr == c)
            if len(where):
                keep = rng.choice(len(where), min(len(where), max_index), replace=False)
                per_class[c] = where[np.sort(keep)]
        index.append(per_class)
    return index


class PatchSampler:
    """Draws (image, label) patches of `patch` voxels; a share `foreground` of them centred on an organ voxel.

    The organ is drawn uniformly among those the case has (so a kidney is as likely as the liver), the centre
    uniformly among that organ's voxels (`index`, from `organ_index`), then jittered so that the organ is not always
    in the middle. Patches that overrun the volume are padded with zeros (image) and background. Every draw comes
    from the generator the caller passes, so a patch is a function of that generator's seed alone.
    """

    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray], patch: tuple[int, int, int],
                 foreground: float, index: list[dict[int, np.ndarray]]):
        self.images, self.labels, self.patch = images, labels, tuple(patch)
        self.foreground, self.index = foreground, index

    def _centre(self, i: int, rng: np.random.Generator) -> np.ndarray:
        shape = np.array(self.labels[i].shape)
        organs = list(self.index[i])
        if organs and rng.random() < self.foreground:
            voxels = self.index[i][organs[rng.integers(len(organs))]]
            centre = voxels[rng.integers(len(voxels))]
            return centre + rng.integers(-np.array(self.patch) // 4, np.array(self.patch) // 4 + 1)
        return np.array([rng.integers(0, s) for s in shape])

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One patch: image (1, *patch) float32 and labels (*patch) uint8."""
        i = int(rng.integers(len(self.images)))
        centre = self._centre(i, rng)
        lo = centre - np.array(self.patch) // 2
        img = np.zeros(self.patch, np.float32)
        lab = np.zeros(self.patch, np.uint8)
        src, dst = [], []
        for d, n in enumerate(self.labels[i].shape):
            a, b = max(lo[d], 0), min(lo[d] + self.patch[d], n)
            src.append(slice(a, b))
            dst.append(slice(a - lo[d], b - lo[d]))
        img[tuple(dst)] = self.images[i][tuple(src)]
        lab[tuple(dst)] = self.labels[i][tuple(src)]
        return img[None], lab
