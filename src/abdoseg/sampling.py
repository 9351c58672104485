"""Class-balanced patch sampling from memory-mapped processed cases: every organ is seen, the small kidneys too."""

from __future__ import annotations

import numpy as np

from . import labels as L


class PatchSampler:
    """Draws (image, label) patches of `patch` voxels; a share `foreground` of them centred on an organ voxel.

    The organ is drawn uniformly among those the case has (so a kidney is as likely as the liver), the centre
    uniformly among that organ's voxels (a subsample is indexed once at start), then jittered so that the organ
    is not always in the middle. Patches that overrun the volume are padded with zeros (image) and background.
    """

    def __init__(self, images: list[np.ndarray], labels: list[np.ndarray], patch: tuple[int, int, int],
                 foreground: float, rng: np.random.Generator, max_index: int = 20000):
        self.images, self.labels, self.patch = images, labels, tuple(patch)
        self.foreground, self.rng = foreground, rng
        self.index: list[dict[int, np.ndarray]] = []
        for lab in labels:
            per_class = {}
            arr = np.asarray(lab)
            for c in L.ORGANS:
                where = np.argwhere(arr == c)
                if len(where):
                    keep = rng.choice(len(where), min(len(where), max_index), replace=False)
                    per_class[c] = where[np.sort(keep)]
            self.index.append(per_class)

    def _centre(self, i: int) -> np.ndarray:
        shape = np.array(self.labels[i].shape)
        organs = list(self.index[i])
        if organs and self.rng.random() < self.foreground:
            voxels = self.index[i][organs[self.rng.integers(len(organs))]]
            centre = voxels[self.rng.integers(len(voxels))]
            return centre + self.rng.integers(-np.array(self.patch) // 4, np.array(self.patch) // 4 + 1)
        return np.array([self.rng.integers(0, s) for s in shape])

    def sample(self) -> tuple[np.ndarray, np.ndarray]:
        """One patch: image (1, *patch) float32 and labels (*patch) int64."""
        i = int(self.rng.integers(len(self.images)))
        centre = self._centre(i)
        lo = centre - np.array(self.patch) // 2
        img = np.zeros(self.patch, np.float32)
        lab = np.zeros(self.patch, np.int64)
        src, dst = [], []
        for d, n in enumerate(self.labels[i].shape):
            a, b = max(lo[d], 0), min(lo[d] + self.patch[d], n)
            src.append(slice(a, b))
            dst.append(slice(a - lo[d], b - lo[d]))
        img[tuple(dst)] = self.images[i][tuple(src)]
        lab[tuple(dst)] = self.labels[i][tuple(src)]
        return img[None], lab

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        pairs = [self.sample() for _ in range(size)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
