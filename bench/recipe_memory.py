"""GPU memory and FLOPs of one training step of a params preset, computed on this CPU-only machine (issue #16).

    python bench/recipe_memory.py --preset gpu-real-data            # the real-data recipe's patch, batch and VNet
    python bench/recipe_memory.py --preset gpu-real-data --check 32 # and the computation against a measured CPU step

How: the VNet runs forward and backward on PyTorch's `meta` device (shapes and dtypes, no data, no arithmetic) at the
preset's patch size and batch size. Every tensor autograd saves for the backward pass is counted once (a
saved-tensors hook): that is the activation memory a step holds at its peak, which sits at the start of the backward
pass. Mixed precision is modelled by running the network in float16 (what autocast gives convolutions, batch norm and
PReLU on CUDA) and the loss in float32 (autocast's float32 list: softmax, log-softmax). Weights, gradients and AdamW's
two moments (float32) and autocast's float16 weight copies are added; cuDNN workspaces and allocator slack are not
(docs/benchmarks.md leaves a margin for them). FLOPs come from torch.utils.flop_counter on the same meta pass.

`--check N` validates the counting: one real float32 step on the CPU at N^3 voxels, the count of saved tensors beside
the growth of the process's peak resident memory (ru_maxrss) over the step.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

from abdoseg import presets, vnet
from abdoseg.train import training_loss

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30


def preset_params(name: str) -> dict:
    """params.yaml with the named preset merged over it."""
    config = yaml.safe_load((REPO / "params.yaml").read_text())
    config["preset"] = name
    return presets.apply(config, REPO / "workflow" / "presets")


def step_activations(model: torch.nn.Module, loss_fn, x: torch.Tensor, y: torch.Tensor) -> tuple[int, float]:
    """(bytes of the tensors saved for backward, forward FLOPs) of one training step: forward pass, loss in float32,
    backward pass. Each saved tensor counts once (several ops may save the same one); weights do not count here
    (static_bytes has them)."""
    weights = {id(p) for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        if id(t) not in weights:
            seen[id(t)] = t.numel() * t.element_size()
        return t

    flops = FlopCounterMode(display=False)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), flops:
        out = model(x)
        out = [o.float() for o in out] if isinstance(out, list) else [out.float()]
        loss = loss_fn(out, y)
    loss.backward()
    return sum(seen.values()), float(flops.get_total_flops())


def meta_step(model_params: dict, batch: int, patch: tuple[int, ...], dtype: torch.dtype) -> tuple[int, float]:
    """step_activations on the meta device: shapes only, any patch size, no memory used."""
    model = vnet.build(model_params).to(device="meta", dtype=dtype).train()
    x = torch.zeros(batch, 1, *patch, device="meta", dtype=dtype)
    y = torch.zeros(batch, 1, *patch, device="meta")
    return step_activations(model, training_loss(model_params), x, y)


def static_bytes(model_params: dict, amp: bool) -> int:
    """Weights, gradients and AdamW's two moments in float32, plus autocast's float16 weight copies."""
    with torch.device("meta"):
        n = sum(p.numel() for p in vnet.build(model_params).parameters())
    return n * (4 * 4 + (2 if amp else 0))


def _rss() -> int:
    """Resident memory of this process now, in bytes."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def check(model_params: dict, size: int) -> tuple[int, int, int]:
    """A real float32 step on the CPU at size^3, batch 1: (counted saved-tensor bytes, parameter-gradient bytes,
    growth of the peak resident memory over the step). Run before anything larger, so that the peak so far is
    the memory in use when the step starts."""
    model = vnet.build(model_params).train()
    x, y = torch.zeros(1, 1, size, size, size), torch.zeros(1, 1, size, size, size)
    start = max(_rss(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    saved, _ = step_activations(model, training_loss(model_params), x, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return saved, sum(p.numel() * 4 for p in model.parameters()), peak - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="gpu-real-data")
    ap.add_argument("--check", type=int, default=0, help="also a real CPU step at this cube size (voxels), batch 1")
    args = ap.parse_args(argv)
    params = preset_params(args.preset)
    mp, tp = params["model"], params["train"]
    batch, patch = int(tp["batch_size"]), tuple(int(p) for p in tp["patch_size"])
    with torch.device("meta"):  # no memory: the check below measures the process's peak
        n_params = sum(p.numel() for p in vnet.build(mp).parameters())
    print(f"preset {args.preset}: VNet base {mp['base_channels']} depth {mp['depth']} kernel {mp['kernel_size']} "
          f"norm {mp['norm']} ({n_params / 1e6:.1f} M parameters), batch {batch}, patch {list(patch)}")
    if args.check:
        saved, grads, grown = check(mp, args.check)
        print(f"  check at {args.check}^3, batch 1, float32 on the CPU: counted {saved / 2**20:.0f} MiB saved for backward"
              f" + {grads / 2**20:.0f} MiB of parameter gradients = {(saved + grads) / 2**20:.0f} MiB; peak resident memory"
              f" grew {grown / 2**20:.0f} MiB over the step")
    for label, dtype, amp in (("float32", torch.float32, False), ("mixed precision", torch.float16, True)):
        act, fwd = meta_step(mp, batch, patch, dtype)
        total = act + static_bytes(mp, amp)
        print(f"  {label:16s} activations {act / GIB:6.2f} GiB + weights/grads/AdamW {static_bytes(mp, amp) / GIB:.2f} GiB"
              f" = {total / GIB:6.2f} GiB")
    steps = int(tp["patches_per_epoch"]) // batch
    print(f"  forward {fwd / 1e12:.2f} TFLOP per step; training (forward + backward, x3) {3 * fwd / 1e12:.2f} TFLOP per"
          f" step, {3 * fwd * steps / 1e15:.2f} PFLOP per epoch of {steps} steps")


if __name__ == "__main__":
    sys.exit(main())
