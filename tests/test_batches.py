"""The data path: a batch depends on (seed, epoch, step) only, whatever the number of worker processes."""

import numpy as np
import pytest
import torch

from abdoseg import labels as L
from abdoseg.augment import AugmentSpec
from abdoseg.batches import PatchBatches, batch_stream, to_device
from abdoseg.sampling import organ_index

PATCH = (16, 16, 12)
KEYS = [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (3, 0)]


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    """Three small processed cases on disk (image .npy float32, labels .npy uint8), as the data step writes them."""
    root = tmp_path_factory.mktemp("batches")
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(3):
        lab = np.zeros((30 + 4 * i, 28, 20), np.uint8)
        lab[4:16, 4:20, 3:15] = L.LIVER
        lab[20:26, 8:14, 5:12] = L.KIDNEY_RIGHT
        lab[2:7, 20:26, 8:14] = L.SPLEEN
        image = (lab / 4 + rng.normal(0, 0.05, lab.shape)).astype(np.float32)
        images.append(root / f"{i}.img.npy")
        labels.append(root / f"{i}.lab.npy")
        np.save(images[-1], image)
        np.save(labels[-1], lab)
    return [str(p) for p in images], [str(p) for p in labels]


def _batches(cases, seed=0):
    images, labels = cases
    index = organ_index([np.load(p) for p in labels], np.random.default_rng(seed))
    spec = AugmentSpec(probability=0.5, mirror_axes=(0,))
    return PatchBatches(images, labels, index, PATCH, 0.8, seed, range(3), spec, (2.5, 2.5, 4.0), augment_here=True)


def _drawn(cases, workers, keys=KEYS):
    return [(b.image.clone(), b.labels.clone()) for b in batch_stream(_batches(cases), keys, workers, pin=False)]


def test_batches_are_the_same_with_0_1_or_2_workers(cases):
    none, one, two = (_drawn(cases, w) for w in (0, 1, 2))
    for key, a, b, c in zip(KEYS, none, one, two):
        assert a[0].shape == (3, 1, *PATCH) and a[1].dtype == torch.uint8, key
        assert torch.equal(a[0], b[0]) and torch.equal(a[0], c[0]) and torch.equal(a[1], b[1]) and torch.equal(a[1], c[1]), key
    assert len({float(x.sum()) for x, _ in none}) == len(KEYS)  # and every step draws other patches


def test_a_batch_depends_on_its_step_not_on_what_was_drawn_before(cases):
    """What a resumed run relies on: starting the stream at epoch 2 gives epoch 2's batches of a full run."""
    full = _drawn(cases, 0)
    later = _drawn(cases, 2, KEYS[3:])
    for a, b in zip(full[3:], later):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_another_seed_draws_other_batches(cases):
    a = _batches(cases, seed=0)[(1, 0)]
    b = _batches(cases, seed=1)[(1, 0)]
    assert not torch.equal(a.image, b.image)


def test_workers_receive_paths_not_arrays(cases):
    """A worker started by spawn gets the paths and the index; it maps the arrays itself."""
    import pickle

    batches = _batches(cases)
    batches[(1, 0)]  # maps the arrays in this process
    state = pickle.loads(pickle.dumps(batches)).__dict__
    assert state["_sampler"] is None and state["image_paths"] == cases[0]


def test_augmenting_on_the_device_after_the_copy_equals_augmenting_in_the_workers(cases):
    """augment_on: device with the CPU as device: the same batches as augment_on: cpu, since each sample's
    augmentation draws from its own seed wherever it runs (on CUDA the generator is CUDA's, with other draws)."""
    images, labels = cases
    index = organ_index([np.load(p) for p in labels], np.random.default_rng(0))
    spec = AugmentSpec(probability=1.0, mirror_axes=(0,), intensity_curve=0.05, bias_field=0.1, domain_probability=0.5)
    here, later = (PatchBatches(images, labels, index, PATCH, 0.8, 0, range(3), spec, (2.5, 2.5, 4.0), augment_here=a) for a in (True, False))
    in_workers = [to_device(b, torch.device("cpu"), None, (2.5, 2.5, 4.0)) for b in batch_stream(here, KEYS, 2, pin=False)]
    raw = list(batch_stream(later, KEYS, 2, pin=False))
    after_copy = [to_device(b, torch.device("cpu"), spec, (2.5, 2.5, 4.0)) for b in raw]
    for key, a, b, r in zip(KEYS, in_workers, after_copy, raw):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and b[1].dtype == torch.uint8, key
        assert not torch.equal(r.image, b[0]), key  # the raw batch was augmented after the copy


def test_the_ranks_of_several_processes_share_out_each_step_exactly(cases):
    """train.devices: 2: process 0 draws samples 0-1 of each step, process 1 samples 2-3; together, the one
    process's batch of 4, so the global batch does not depend on the number of processes."""
    from abdoseg.distributed import Rank

    images, labels = cases
    index = organ_index([np.load(p) for p in labels], np.random.default_rng(0))
    spec = AugmentSpec(probability=0.5)

    def draw(samples):
        return PatchBatches(images, labels, index, PATCH, 0.8, 0, samples, spec, (2.5, 2.5, 4.0), augment_here=True)[(2, 1)]

    assert [Rank(r, 2).samples(4) for r in (0, 1)] == [range(0, 2), range(2, 4)]
    whole, first, second = draw(Rank(0, 1).samples(4)), draw(Rank(0, 2).samples(4)), draw(Rank(1, 2).samples(4))
    assert torch.equal(whole.image, torch.cat([first.image, second.image]))
    assert torch.equal(whole.labels, torch.cat([first.labels, second.labels]))
