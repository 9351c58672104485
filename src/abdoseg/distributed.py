"""Training on several GPUs of one node (`train.devices: N`): torchrun starts N processes, one per device, that
train DistributedDataParallel replicas of the VNet.

`launch` starts them (`python -m torch.distributed.run --standalone --nproc_per_node N -m abdoseg.distributed JOB`,
torchrun from the running interpreter) and each runs abdoseg.train.train with the job's arguments. Each process
takes its own slice of every step's `train.batch_size` samples (seeded by sample number: abdoseg.batches), so the
global batch is the same whatever N; DDP averages the gradients; only rank 0 validates and writes the log and
checkpoints. The backend is NCCL on CUDA and gloo on the CPU (which the tests use).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist

from .device import DeviceError, cuda_problem

# Ranks other than 0 wait at the next step's gradient exchange while rank 0 validates: allow a long validation.
TIMEOUT = datetime.timedelta(hours=2)


@dataclass(frozen=True)
class Rank:
    """This process's place among the training processes: rank, how many, and its device index on the node."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @property
    def main(self) -> bool:
        """Whether this process validates and writes (rank 0)."""
        return self.rank == 0

    def samples(self, batch_size: int) -> range:
        """The sample numbers of each step's batch that this process draws: an equal, distinct slice."""
        share = batch_size // self.world
        return range(self.rank * share, (self.rank + 1) * share)


def current() -> Rank:
    """The rank torchrun gave this process (RANK, WORLD_SIZE, LOCAL_RANK), or the only one."""
    env = os.environ
    return Rank(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def check_devices(asked: str, devices: int) -> None:
    """Before starting processes: `cuda` needs a usable CUDA with `devices` GPUs (DeviceError saying why not)."""
    if not asked.startswith("cuda"):
        return
    problem = cuda_problem()
    if problem is None and torch.cuda.device_count() < devices:
        problem = f"train.devices is {devices}, but torch sees {torch.cuda.device_count()} GPU(s)"
    if problem:
        raise DeviceError(f"device {asked!r} asked, but CUDA is not usable: {problem}")


def rank_device(asked: str, rank: Rank) -> torch.device:
    """The device of `rank`: GPU number `rank.local` when CUDA is asked (or `auto` finds it), else the CPU."""
    if asked == "cpu" or (asked == "auto" and cuda_problem() is not None):
        return torch.device("cpu")
    check_devices("cuda", rank.world)
    return torch.device("cuda", rank.local)


@contextlib.contextmanager
def process_group(device: torch.device, rank: Rank) -> Iterator[None]:
    """The process group of a run with several processes (NCCL on CUDA, gloo on the CPU); nothing for one."""
    if rank.world == 1:
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    try:
        yield
    finally:
        dist.destroy_process_group()


def mean_over_ranks(value: torch.Tensor, rank: Rank) -> torch.Tensor:
    """`value` averaged over the processes (itself with one)."""
    if rank.world > 1:
        value = value.clone()
        dist.all_reduce(value)
        value /= rank.world
    return value


def _file_or_inherit(stream: object) -> object:
    """`stream` when it is a real file (the rule's log, where abdoseg.runlog redirects sys.stdout), else None: the
    processes then write where this one's file descriptors point."""
    try:
        stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None
    return stream


def launch(job: dict, devices: int) -> dict:
    """Run abdoseg.train.train(**job) in `devices` processes under torchrun; returns rank 0's result (the best
    epoch's row). The processes import the abdoseg this one runs (PYTHONPATH), whatever is installed."""
    package_root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
    with tempfile.TemporaryDirectory(prefix="abdoseg-ddp-") as tmp:
        job_file, result = Path(tmp) / "job.json", Path(tmp) / "best.json"
        job_file.write_text(json.dumps({**job, "result": str(result)}))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
               "-m", "abdoseg.distributed", str(job_file)]
        print(f"training in {devices} processes: {' '.join(cmd[1:])}", flush=True)
        sys.stderr.flush()
        run = subprocess.run(cmd, env=env, stdout=_file_or_inherit(sys.stdout), stderr=_file_or_inherit(sys.stderr))
        if run.returncode != 0:
            raise RuntimeError(f"torchrun with {devices} training processes exited with {run.returncode}; each "
                               "process's error is in the log above")
        return json.loads(result.read_text())


def main(job_file: str) -> None:
    """One process of `launch`: train with the job's arguments; rank 0 writes the result."""
    from .train import train

    job = json.loads(Path(job_file).read_text())
    result = Path(job.pop("result"))
    best = train(**job)
    if current().main:
        result.write_text(json.dumps(best))


if __name__ == "__main__":
    main(sys.argv[1])
