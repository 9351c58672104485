"""GPU timings for bench/gpu.sh: training steps per second with mixed precision (train.deterministic on and off,
the default network and the vnet-paper preset) and one predict of a 512 x 512 x 300 scan with its peak GPU memory.

Prints one JSON object per measurement; nothing asserts a time. Timings use random patches and untrained weights:
the cost of a step or a sliding window does not depend on the values.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy import ndimage

from abdoseg import presets, vnet
from abdoseg.device import describe, deterministic, pick_device
from abdoseg.train import checkpoint_meta, training_loss


def params_for(preset: str | None) -> dict:
    params = yaml.safe_load(Path("params.yaml").read_text())
    params["preset"] = preset
    return presets.apply(params)


def train_steps_per_s(params: dict, device: torch.device, steps: int, det: bool) -> dict:
    tp, mp = params["train"], params["model"]
    bs, patch = int(tp["batch_size"]), tuple(int(p) for p in tp["patch_size"])
    with deterministic(det):
        torch.manual_seed(0)
        model = vnet.build(mp).to(device).train()
        opt = torch.optim.AdamW(model.parameters(), lr=float(tp["lr"]), fused=True)
        scaler = torch.amp.GradScaler("cuda")
        loss_fn = training_loss(mp)
        x = torch.rand(bs, 1, *patch, device=device)
        y = torch.randint(0, 5, (bs, 1, *patch), device=device).float()

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda"):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

        for _ in range(5):  # warm-up: cuDNN picks its kernels
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        seconds = time.perf_counter() - t
    return {"what": "train steps/s (AMP)", "preset": params.get("preset") or "default", "deterministic": det,
            "batch": bs, "patch": list(patch), "steps": steps, "steps_per_s": round(steps / seconds, 2),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def predict_512(params: dict, device: torch.device, tmp: Path) -> dict:
    from abdoseg.checkpoint import save
    from abdoseg.inference import load_model
    from abdoseg.predict import StageTimer, predict_array
    from abdoseg.specs import PredictSpec
    from abdoseg.real_ct import load

    # the bundled real CT zoomed to a typical abdominal scan's grid, 512 x 512 x 300 voxels of 0.8 x 0.8 x 1.5 mm
    # (its anatomy stretched: the timing depends on the grid, not on the shapes in it)
    scan = load()
    shape = (512, 512, 300)
    image = ndimage.zoom(scan.image.astype(np.float32), [s / n for s, n in zip(shape, scan.image.shape)], order=1)
    image = image.astype(np.int16)
    affine = np.diag([0.8, 0.8, 1.5, 1.0])
    torch.manual_seed(0)
    path = tmp / "untrained.pt"
    save({**checkpoint_meta(params, [], []), "model_state": vnet.build(params["model"]).state_dict()}, path, "model")
    t0 = time.perf_counter()
    model = load_model(path, device)
    load_s = time.perf_counter() - t0
    spec = PredictSpec.from_params(params["predict"])
    predict_array(image, affine, model, device, spec)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    timer = StageTimer()
    t = time.perf_counter()
    labels = predict_array(image, affine, model, device, spec, timer)
    seconds = time.perf_counter() - t
    return {"what": "predict one scan", "preset": params.get("preset") or "default", "shape": list(labels.shape),
            "spacing_mm": [round(float(v), 3) for v in np.linalg.norm(affine[:3, :3], axis=0)],
            "sw_batch_size": spec.sw_batch_size, "seconds": round(seconds, 2),
            "stages_s": {k: round(v, 2) for k, v in timer.items()}, "model_load_s": round(load_s, 2),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    device = pick_device("cuda")
    torch.zeros(1, device=device)
    print(json.dumps({"what": "CUDA start-up", "seconds": round(time.perf_counter() - t, 2), "line": describe(device, "cuda")}), flush=True)
    for preset in (None, "vnet-paper"):
        params = params_for(preset)
        for det in (True, False):
            print(json.dumps(train_steps_per_s(params, device, args.steps, det)), flush=True)
        print(json.dumps(predict_512(params, device, args.out)), flush=True)


if __name__ == "__main__":
    main()
