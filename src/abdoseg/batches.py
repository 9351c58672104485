"""Training batches: patch sampling (and CPU augmentation) in DataLoader worker processes, each sample a function of
(train.seed, epoch, step, its number in the step's batch) alone.

Why workers: sampling and augmenting in the training loop leaves the GPU idle while the CPU works; worker processes
prepare the next batches meanwhile (`prefetch_factor` batches each), pinned on CUDA so that the copy does not block.
Why a seed per sample: a batch is then the same with 0, 1 or 8 workers, and a resumed run needs no random state to
draw exactly the batches an uninterrupted run would have drawn. Workers open the memory-mapped arrays themselves:
only paths and the organ index (abdoseg.sampling.organ_index) travel to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .augment import AugmentSpec, augment
from .sampling import PatchSampler

PREFETCH = 2  # batches each worker prepares ahead: torch's default, enough to hide one slow patch


@dataclass(frozen=True)
class DataPathSpec:
    """Where the batches are made: `workers` processes (0: the training process) and where augmentation runs,
    `cpu` (in the workers) or `device` (on the batch's device, after the copy)."""

    workers: int = 1
    augment_on: str = "cpu"

    @classmethod
    def from_params(cls, train_params: dict) -> "DataPathSpec":
        return cls(workers=int(train_params["workers"]), augment_on=str(train_params["augment_on"]))


class Batch(NamedTuple):
    """A step's patches as the workers deliver them; `seeds` seed each sample's augmentation where it runs later."""

    image: torch.Tensor  # (B, 1, X, Y, Z) float32
    labels: torch.Tensor  # (B, X, Y, Z) uint8
    seeds: list[int]


def _sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The seed sequence of `key` under `seed` (numpy's spawn keys: independent streams, no shared state)."""
    return np.random.SeedSequence(int(seed) % 2**64, spawn_key=key)


def derived_seed(seed: int, *key: int) -> int:
    """A torch seed (below 2**63) for `key` under `seed`: of one sample's augmentation, or of an epoch's dropout."""
    return int(_sequence(seed, *key).generate_state(1, np.uint64)[0] >> np.uint64(1))


def sample_seeds(seed: int, epoch: int, step: int, sample: int) -> tuple[np.random.Generator, int]:
    """The patch generator and the augmentation seed of sample `sample` of `step` in `epoch` (the two children of
    that sample's sequence, as `SeedSequence.spawn(2)` would give them)."""
    return np.random.default_rng(_sequence(seed, epoch, step, sample, 0)), derived_seed(seed, epoch, step, sample, 1)


def augment_sample(image: torch.Tensor, labels: torch.Tensor, spec: AugmentSpec, seed: int,
                   spacing: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Augment one sample ((1, 1, X, Y, Z) image, (1, X, Y, Z) labels) on its own device, from a generator there
    seeded with `seed`; labels come back as uint8."""
    gen = torch.Generator(image.device).manual_seed(seed)
    image, labels = augment(image, labels.long(), spec, gen, spacing)  # long: mirroring indexes with the labels
    return image, labels.to(torch.uint8)


class PatchBatches(Dataset):
    """(epoch, step) -> this process's `samples` of that step's batch (all of it in one process), augmented when
    `augment_here`."""

    def __init__(self, image_paths: list[str], label_paths: list[str], index: list[dict[int, np.ndarray]],
                 patch: tuple[int, int, int], foreground: float, seed: int, samples: range, spec: AugmentSpec,
                 spacing: tuple[float, float, float], augment_here: bool):
        self.image_paths, self.label_paths, self.index = image_paths, label_paths, index
        self.patch, self.foreground, self.seed, self.samples = patch, foreground, seed, samples
        self.spec, self.spacing, self.augment_here = spec, spacing, augment_here
        self._sampler: PatchSampler | None = None

    def __getstate__(self) -> dict:
        """Without the opened arrays: a worker started by spawn maps them itself instead of receiving copies."""
        return {**self.__dict__, "_sampler": None}

    def _open(self) -> PatchSampler:
        if self._sampler is None:
            images = [np.load(p, mmap_mode="r") for p in self.image_paths]
            labels = [np.load(p, mmap_mode="r") for p in self.label_paths]
            self._sampler = PatchSampler(images, labels, self.patch, self.foreground, self.index)
        return self._sampler

    def __getitem__(self, key: tuple[int, int]) -> Batch:
        epoch, step = key
        sampler = self._open()
        images, labels, seeds = [], [], []
        for sample in self.samples:
            rng, seed = sample_seeds(self.seed, epoch, step, sample)
            image, lab = (torch.from_numpy(a)[None] for a in sampler.sample(rng))
            if self.augment_here:
                image, lab = augment_sample(image, lab, self.spec, seed, self.spacing)
            images.append(image)
            labels.append(lab)
            seeds.append(seed)
        return Batch(torch.cat(images), torch.cat(labels), seeds)


def batch_stream(batches: PatchBatches, keys: list[tuple[int, int]], workers: int, pin: bool) -> DataLoader:
    """The batches of `keys` in order, made by `workers` processes (0: here), pinned when `pin` (CUDA)."""
    return DataLoader(batches, batch_size=None, sampler=keys, num_workers=workers, pin_memory=pin,
                      prefetch_factor=PREFETCH if workers else None)


def to_device(batch: Batch, device: torch.device, spec: AugmentSpec | None,
              spacing: tuple[float, float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch on `device` (non-blocking copies, from pinned memory on CUDA); with `spec`, augmented there, each
    sample from its own seed, so that the result equals the workers' augmentation when `device` is the CPU."""
    image = batch.image.to(device, non_blocking=True)
    labels = batch.labels.to(device, non_blocking=True)
    if spec is None:
        return image, labels
    pairs = [augment_sample(image[i:i + 1], labels[i:i + 1], spec, seed, spacing) for i, seed in enumerate(batch.seeds)]
    return torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs])
