"""The train step: the VNet on class-balanced patches, Dice + cross-entropy, validation by sliding window.

Writes best.pt (by mean validation Dice over organs), last.pt and a per-epoch CSV log. Every checkpoint embeds
the params it was trained with, the label table and the preprocessing spec: inference never guesses.
resume.pt, rewritten after every epoch, also holds the optimiser, scheduler, mixed-precision scaler, epoch and
the best weights so far, so that `train.resume` continues an interrupted run to the same end as an uninterrupted
one (on CUDA with `train.deterministic`). No random state needs saving: every batch is drawn from seeds derived
from (train.seed, epoch, step) (abdoseg.batches), and torch's own generators (dropout) are reseeded from
(train.seed, epoch) at each epoch's start. resume.pt is not a declared output: Snakemake and DVC delete declared
outputs before rerunning a step. All three are written and read by abdoseg.checkpoint.
"""

from __future__ import annotations

import csv
import os
import random
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from monai.losses import DeepSupervisionLoss, DiceCELoss
from tqdm import tqdm

from . import labels as L
from . import checkpoint, distributed, files, vnet
from .augment import AugmentSpec
from .batches import DataPathSpec, PatchBatches, batch_stream, derived_seed, to_device
from .device import describe, deterministic, pick_device, training_autocast
from .inference import sliding_window_probs
from .metrics import dice
from .preprocess import PreprocessSpec
from .sampling import organ_index

LOG_COLUMNS = ["epoch", "train_loss", "val_loss", *[f"dice_{o}" for o in L.ORGANS.values()], "dice_mean", "lr", "seconds"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_processed(processed_image: str, processed_label: str, cases: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Memory-map the processed arrays of `cases` (path templates with {case})."""
    images = [np.load(processed_image.format(case=c), mmap_mode="r") for c in cases]
    labels = [np.load(processed_label.format(case=c), mmap_mode="r") for c in cases]
    return images, labels


def checkpoint_meta(params: dict, train_cases: list[str], val_cases: list[str], intensity_stats: dict | None = None) -> dict:
    """What every checkpoint carries besides weights: params, label table, preprocessing spec, patch, cases."""
    spec = PreprocessSpec.from_params(params["preprocess"], intensity_stats)
    return {"params": params, "labels": L.as_table(), "preprocess": asdict(spec), "intensity_stats": intensity_stats,
            "patch_size": [int(p) for p in params["train"]["patch_size"]], "model": params["model"],
            "train_cases": train_cases, "val_cases": val_cases}


def training_loss(model_params: dict) -> DeepSupervisionLoss:
    """Dice + cross-entropy; with `model.deep_supervision`, also at each coarser output, with weights 1, 1/2,
    1/4, ... normalised to sum 1 (nnU-Net's), so that the logged loss keeps its scale. Takes float labels."""
    weights = [0.5 ** level for level in range(1 + int(model_params.get("deep_supervision", 0)))]
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False, batch=True)
    return DeepSupervisionLoss(dice_ce, weights=[w / sum(weights) for w in weights])


class _Progress:
    """A tqdm bar over all steps on a terminal (the epoch's loss shown at its end), one plain line per epoch otherwise.
    It never reads the loss per step: that would wait for the GPU at every step."""

    def __init__(self, total_steps: int, done_steps: int, enabled: bool = True):
        self.tty = sys.stderr.isatty() and enabled  # the bar of rank 0 only
        self.bar = tqdm(total=total_steps, initial=done_steps, desc="train", unit="step", disable=not self.tty)

    def step(self) -> None:
        if self.tty:
            self.bar.update(1)

    def epoch(self, row: dict) -> None:
        if self.tty:
            self.bar.set_postfix_str(f"epoch {row['epoch']} loss {row['train_loss']:.4f}")
        else:
            val = f" val dice {row['dice_mean']:.3f}" if row["dice_mean"] == row["dice_mean"] else ""
            print(f"epoch {row['epoch']}: loss {row['train_loss']:.4f}{val} lr {row['lr']:.2e} ({row['seconds']:.1f} s)", flush=True)

    def close(self) -> None:
        self.bar.close()


def train(params: dict, train_cases: list[str], val_cases: list[str], processed_image: str, processed_label: str,
          out_dir: str | os.PathLike, threads: int = 1, intensity_stats: dict | None = None) -> dict:
    """Train the VNet and write best.pt, last.pt and train_log.csv under `out_dir`; returns the best epoch's row.

    `intensity_stats` (abdoseg.intensity) is needed with `preprocess.normalize: percentile`, to record the spec.
    The device is logged first; `train.device: cuda` without a usable GPU fails here, before any data is read.
    With `train.devices` above 1, this starts that many processes under torchrun (abdoseg.distributed), each of
    which comes back here with its rank and splits the `threads` with the others.
    """
    tp, rank = params["train"], distributed.current()
    devices = int(tp["devices"])
    if devices > 1 and rank.world == 1:
        distributed.check_devices(tp["device"], devices)
        return distributed.launch({"params": params, "train_cases": train_cases, "val_cases": val_cases,
                                   "processed_image": processed_image, "processed_label": processed_label,
                                   "out_dir": str(out_dir), "threads": max(1, threads // devices),
                                   "intensity_stats": intensity_stats}, devices)
    torch.set_num_threads(max(1, threads))
    device = pick_device(tp["device"]) if rank.world == 1 else distributed.rank_device(tp["device"], rank)
    autocast = training_autocast(device, tp["cpu_bf16"])
    print(describe(device, tp["device"]) + f"; training in {_precision_name(autocast)}"
          + (f"; process {rank.rank} of {rank.world}" if rank.world > 1 else ""), flush=True)
    with deterministic(bool(tp["deterministic"])), distributed.process_group(device, rank):
        return _train(params, train_cases, val_cases, processed_image, processed_label, Path(out_dir), device,
                      intensity_stats, rank, autocast)


def _precision_name(autocast: torch.dtype | None) -> str:
    """How the start-up line names the training's precision."""
    return {None: "float32", torch.float16: "float16 autocast (mixed precision)",
            torch.bfloat16: "bfloat16 autocast (train.cpu_bf16)"}[autocast]


def _train(params: dict, train_cases: list[str], val_cases: list[str], processed_image: str, processed_label: str,
           out_dir: Path, device: torch.device, intensity_stats: dict | None, rank: distributed.Rank,
           autocast: torch.dtype | None) -> dict:
    tp, mp = params["train"], params["model"]
    out_dir.mkdir(parents=True, exist_ok=True)
    seed = int(tp["seed"])
    seed_everything(seed)
    patch = tuple(int(p) for p in tp["patch_size"])
    sw_batch_size = int(params["predict"]["sw_batch_size"])

    image_paths = [processed_image.format(case=c) for c in train_cases]
    label_paths = [processed_label.format(case=c) for c in train_cases]
    index = organ_index([np.load(p, mmap_mode="r") for p in label_paths], np.random.default_rng(seed))
    spacing = tuple(float(s) for s in params["preprocess"]["spacing"])  # augmentation rotates in mm
    aug, data_path = AugmentSpec.from_params(params["augment"]), DataPathSpec.from_params(tp)
    on_device = data_path.augment_on == "device"  # else in the workers, on the CPU
    batches = PatchBatches(image_paths, label_paths, index, patch, float(tp["foreground_fraction"]), seed,
                           rank.samples(int(tp["batch_size"])), aug, spacing, augment_here=not on_device)
    val_images, val_labels = load_processed(processed_image, processed_label, val_cases)

    cuda = device.type == "cuda"
    net = vnet.build(mp)
    if cuda and rank.world > 1:  # batch norm over the global batch, as in one process (no-op without batch norm)
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    net = net.to(device)
    # fused AdamW on CUDA: with it the scaler's inf check stays on the GPU instead of waiting for it every step
    optimiser = torch.optim.AdamW(net.parameters(), lr=float(tp["lr"]), weight_decay=float(tp["weight_decay"]),
                                  fused=True if cuda else None)
    epochs = int(tp["epochs"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=epochs, eta_min=float(tp["lr"]) * float(tp["lr_min_factor"]))
    train_loss_fn = training_loss(mp)
    loss_fn = train_loss_fn.loss  # validation scores the full-resolution output only
    scaler = torch.amp.GradScaler(device.type, enabled=cuda)
    steps = max(1, int(tp["patches_per_epoch"]) // int(tp["batch_size"]))

    meta = checkpoint_meta(params, train_cases, val_cases, intensity_stats)
    log_path = out_dir / "train_log.csv"
    start, best = 0, {"dice_mean": -1.0}
    resume_path = out_dir / "resume.pt"
    best_state, history = None, []
    if tp.get("resume") and not resume_path.exists():
        print(f"train.resume is set but {resume_path} does not exist: starting from epoch 1", flush=True)
    elif tp.get("resume"):
        state = checkpoint.load(resume_path, "resume")
        net.load_state_dict(state["model_state"])
        optimiser.load_state_dict(state["optimiser"])  # moves the state onto the parameters' device
        scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and scaler.is_enabled():
            scaler.load_state_dict(state["scaler"])
        start, best, best_state, history = state["epoch"], state["best"], state["best_state"], state["history"]
        print(f"resuming after epoch {start} from {resume_path}", flush=True)
    if rank.main:  # the log is rewritten from the checkpointed history: epochs after the last checkpoint run again
        with files.atomic_path(log_path) as tmp, open(tmp, "w", newline="") as fh:
            csv.writer(fh).writerows([LOG_COLUMNS, *[[row[c] for c in LOG_COLUMNS] for row in history]])
    # several processes: DDP averages the gradients; validation and checkpoints use the bare network, on rank 0
    model = torch.nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if cuda else None) if rank.world > 1 else net

    progress = _Progress(epochs * steps, start * steps, enabled=rank.main)
    # one stream over every remaining step: the workers prepare the next epoch's first batches during validation
    stream = iter(batch_stream(batches, [(e, s) for e in range(start + 1, epochs + 1) for s in range(steps)],
                               data_path.workers, pin=cuda))
    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        torch.manual_seed(derived_seed(seed, epoch, rank.rank))  # dropout: a resume needs no saved random state
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)  # read once per epoch: no wait per step
        for _ in range(steps):
            x, y = to_device(next(stream), device, aug if on_device else None, spacing)
            optimiser.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                loss = train_loss_fn(model(x), y[:, None].float())  # float: the targets are resized for coarse outputs
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            loss_sum += loss.detach()
            progress.step()
        lr = optimiser.param_groups[0]["lr"]
        scheduler.step()
        train_loss = float(distributed.mean_over_ranks(loss_sum, rank)) / steps
        if not rank.main:
            continue
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": float("nan"), "lr": lr}
        row.update({f"dice_{o}": float("nan") for o in L.ORGANS.values()}, dice_mean=float("nan"))
        if epoch % int(tp["val_every"]) == 0 or epoch == epochs:
            row.update(validate(net, val_images, val_labels, patch, float(tp["val_overlap"]), device, loss_fn, sw_batch_size))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        with open(log_path, "a", newline="") as fh:
            csv.writer(fh).writerow([row[c] for c in LOG_COLUMNS])
        improved = row["dice_mean"] == row["dice_mean"] and row["dice_mean"] > best["dice_mean"]
        if improved:
            best, best_state = dict(row), checkpoint.to_plain(net.state_dict())
        if improved or (best_state is not None and not (out_dir / "best.pt").exists()):  # rewrite after a resume
            checkpoint.save({**meta, "model_state": best_state, "epoch": best["epoch"], "val": best}, out_dir / "best.pt", "model")
        checkpoint.save({**meta, "model_state": net.state_dict(), "epoch": epoch}, out_dir / "last.pt", "model")
        checkpoint.save({"model_state": net.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
                         "scaler": scaler.state_dict(), "epoch": epoch, "best": best, "best_state": best_state,
                         "history": history}, resume_path, "resume")
        progress.epoch(row)
    progress.close()
    return best


def validate(model: torch.nn.Module, images: list[np.ndarray], labels: list[np.ndarray], patch: tuple[int, int, int],
             overlap: float, device: torch.device, loss_fn: torch.nn.Module, sw_batch_size: int) -> dict:
    """Mean validation loss and per-organ Dice (processed space) over the validation cases."""
    model.eval()
    scores = {o: [] for o in L.ORGANS.values()}
    losses = []
    for image, lab in zip(images, labels):
        probs = sliding_window_probs(model, image, patch, overlap, device, sw_batch_size)
        ref = torch.from_numpy(np.array(lab, dtype=np.int64))  # a copy: memmaps are read-only
        pred = probs.argmax(0).numpy()
        with torch.no_grad():
            # the loss on probabilities: DiceCE expects logits, and log-probabilities are logits up to a constant
            losses.append(float(loss_fn(torch.log(probs.clamp_min(1e-8))[None], ref[None, None])))
        for oid, name in L.ORGANS.items():
            scores[name].append(dice(pred == oid, np.asarray(lab) == oid))
    out = {f"dice_{k}": float(np.mean(v)) for k, v in scores.items()}
    out["dice_mean"] = float(np.mean([out[f"dice_{k}"] for k in scores]))
    out["val_loss"] = float(np.mean(losses))
    return out


def train_step(params: dict, threads: int = 1) -> dict:
    """The train rule's work, from the pipeline's paths: what both the rule and `abdoseg train --config` run.

    Reads the split and the processed arrays the data step wrote; writes best.pt, last.pt, train_log.csv (and
    resume.pt) under results/model.
    """
    from . import paths as P
    from .intensity import stats_if_needed
    from .split import read_split

    if not Path(P.SPLITS).exists():
        raise FileNotFoundError(f"{P.SPLITS}: missing; run the data step first (snakemake --cores all data, or dvc repro data)")
    split = read_split(P.SPLITS)
    return train(params, split["train"], split["val"], P.PROCESSED_IMAGE, P.PROCESSED_LABEL, P.MODEL_DIR,
                 threads=threads, intensity_stats=stats_if_needed(params["preprocess"], P.INTENSITY))
