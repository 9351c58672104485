"""Patches per second that the training data path delivers (issue #16), with 0, 1, 2 and all workers, against the
time of a training step on this machine's CPU.

`python bench/data_path.py` makes a few synthetic processed cases itself (the preset's grid, no network), then
times abdoseg.batches' stream at the gpu-real-data preset's patch size (read from workflow/presets/gpu-real-data.yaml)
and batch, with augmentation in the workers (`train.augment_on: cpu`) and without (`device`: the workers only
sample), then the same at the default patch, and one training step of the default network on the CPU. Prints one
JSON object per measurement, with the load average, which says how busy the machine was. Each stream is also
counted in patches per CPU second (its workers included), the rate of one worker on a core of its own: what the
cores a GPU needs are computed from (docs/benchmarks.md, "Data path"). Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from abdoseg import vnet
from abdoseg.augment import AugmentSpec
from abdoseg.batches import PREFETCH, PatchBatches, batch_stream
from abdoseg.preprocess import PreprocessSpec, preprocess, save_processed
from abdoseg.sampling import organ_index
from abdoseg.synthetic import SyntheticConfig, generate_case
from abdoseg.train import training_loss

REPO = Path(__file__).resolve().parents[1]


def make_cases(root: Path, n: int, spacing: list[float]) -> tuple[list[str], list[str]]:
    """`n` default synthetic phantoms resampled to `spacing`, saved as the data step saves them."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    spec = PreprocessSpec.from_params({**params["preprocess"], "spacing": spacing})
    images, labels = [], []
    for i in range(n):
        case = generate_case(i, SyntheticConfig())
        image, lab, geom = preprocess(case.image, case.affine, spec, case.labels)
        images.append(str(root / f"{i}.img.npy"))
        labels.append(str(root / f"{i}.lab.npy"))
        save_processed(images[-1], labels[-1], str(root / f"{i}.json"), image, lab, geom)
    return images, labels


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the DataLoader workers, once the stream has ended)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def patches_per_s(cases: tuple[list[str], list[str]], patch: tuple[int, int, int], batch: int, spacing: list[float],
                  workers: int, in_workers: bool, batches: int) -> dict:
    """Patches per second of the stream in its steady state, timed after the batches the workers could have made
    while the first one was awaited (PREFETCH per worker), so neither start-up nor the filled queue counts; and
    patches per CPU second over the whole stream (workers included), which a busy machine does not change: what
    one worker makes on a core of its own."""
    images, labels = cases
    aug = AugmentSpec.from_params(yaml.safe_load((REPO / "params.yaml").read_text())["augment"])
    index = organ_index([np.load(p, mmap_mode="r") for p in labels], np.random.default_rng(0))
    data = PatchBatches(images, labels, index, patch, 0.8, 0, range(batch), aug, tuple(spacing), augment_here=in_workers)
    warm = 1 + PREFETCH * workers
    load, cpu = os.getloadavg()[0], cpu_seconds()
    stream = iter(batch_stream(data, [(1, s) for s in range(warm + batches)], workers, pin=False))
    for _ in range(warm):
        next(stream)
    t = time.perf_counter()
    for _ in range(batches):
        next(stream)
    seconds = time.perf_counter() - t
    for _ in stream:  # the end: the workers exit and are reaped, so their CPU time is counted
        pass
    cpu = cpu_seconds() - cpu
    return {"what": "data path", "patch": list(patch), "batch": batch, "workers": workers,
            "augment_on": "cpu" if in_workers else "device", "patches_per_s": round(batches * batch / seconds, 2),
            "patches_per_cpu_s": round((warm + batches) * batch / cpu, 2),
            "load_1min_before": round(load, 2), "load_1min_after": round(os.getloadavg()[0], 2)}


def cpu_step_s(steps: int) -> dict:
    """Seconds per training step of params.yaml's network, patch and batch on the CPU (random data, after 2 warm-ups)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tp = params["train"]
    patch, bs = tuple(tp["patch_size"]), int(tp["batch_size"])
    torch.manual_seed(0)
    model = vnet.build(params["model"]).train()
    opt = torch.optim.AdamW(model.parameters(), lr=float(tp["lr"]))
    loss_fn = training_loss(params["model"])
    x, y = torch.rand(bs, 1, *patch), torch.randint(0, 5, (bs, 1, *patch)).float()
    load = os.getloadavg()[0]
    times, cpu = [], 0.0
    for i in range(steps + 2):
        if i == 2:
            cpu = cpu_seconds()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
    s, cpu = float(np.median(times[2:])), (cpu_seconds() - cpu) / steps
    return {"what": "CPU training step (default network)", "patch": list(patch), "batch": bs,
            "torch_threads": torch.get_num_threads(), "seconds_per_step": round(s, 3), "cpu_seconds_per_step": round(cpu, 3),
            "patches_per_s": round(bs / s, 2), "load_1min_before": round(load, 2), "load_1min_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--batches", type=int, nargs=2, default=[8, 40], metavar=("PRESET", "DEFAULT"),
                    help="timed batches per measurement at the preset's patch and at the default one")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    preset = yaml.safe_load((REPO / "workflow" / "presets" / "gpu-real-data.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    cores = os.cpu_count() or 1
    counts = sorted({0, 1, 2, cores})
    print(json.dumps({"what": "machine", "cpu_count": cores, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(tuple(preset["train"]["patch_size"]), int(preset["train"]["batch_size"]), preset["preprocess"]["spacing"]),
                (tuple(params["train"]["patch_size"]), int(params["train"]["batch_size"]), params["preprocess"]["spacing"])]
        for n, ((patch, batch, spacing), timed) in enumerate(zip(runs, args.batches)):
            folder = Path(tmp) / str(n)
            folder.mkdir()
            t = time.perf_counter()
            cases = make_cases(folder, args.cases, spacing)
            shapes = [list(np.load(p, mmap_mode="r").shape) for p in cases[0]]
            print(json.dumps({"what": "cases", "spacing": spacing, "shapes": shapes, "seconds": round(time.perf_counter() - t, 1)}), flush=True)
            for in_workers in (True, False):
                for workers in counts:
                    print(json.dumps(patches_per_s(cases, patch, batch, spacing, workers, in_workers, timed)), flush=True)
    print(json.dumps(cpu_step_s(args.steps)), flush=True)


if __name__ == "__main__":
    main()
