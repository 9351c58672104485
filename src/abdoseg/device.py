"""The torch device that training and inference run on, said out loud: no silent fall-back to the CPU.

`pick_device` resolves `auto`, `cpu`, `cuda` or `cuda:N`: `cuda` fails at once naming why CUDA is not usable,
`auto` warns when `nvidia-smi` lists a GPU that torch cannot use (a CPU build of torch, a driver too old for the
wheel). Where several cards are visible it claims a free one and narrows CUDA_VISIBLE_DEVICES to it, so that
each GPU job sees one card. `describe` is the start-up log line. The card counting is torch-free (the Snakefile
imports this module to cap GPU jobs at one per card, and must not pay torch's import in every job).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from . import runlog

if TYPE_CHECKING:
    import torch


class DeviceError(ValueError):
    """The asked device (a parameter's value) cannot be used; the message says why."""


def nvidia_smi_gpus() -> list[tuple[str, str]]:
    """(name, UUID) of each GPU `nvidia-smi -L` lists; empty when it is absent or does not answer."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        run = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if run.returncode != 0:
        return []
    return re.findall(r"^GPU \d+: (.+?) \(UUID: ([^)]+)\)", run.stdout, re.M)


def visible_cards() -> list[str]:
    """The cards CUDA would see, as CUDA_VISIBLE_DEVICES names them: its entries when set, else nvidia-smi's UUIDs.

    UUIDs rather than indices: nvidia-smi numbers cards in PCI order, CUDA by default fastest first.
    """
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        cards = []
        for token in (t.strip() for t in env.split(",")):
            if not token or token.startswith("-"):  # CUDA stops at the first invalid entry ("-1" hides all)
                break
            cards.append(token)
        return cards
    return [uuid for _, uuid in nvidia_smi_gpus()]


def gpu_job_slots() -> int:
    """How many GPU jobs Snakemake may run at once: one per visible card (at least 1, so that a job asking for a
    GPU on a machine without one runs and fails with the reason instead of waiting for ever)."""
    return max(1, len(visible_cards()))


def uses_gpu(name: str) -> bool:
    """Whether a job with device `name` (params.yaml) takes a GPU: `cuda*` always, `auto` when a card is visible."""
    return name.startswith("cuda") or (name == "auto" and bool(visible_cards()))


_held: list = []  # lock files of claimed cards, open for the life of the process


def claim_card(lock_dir: str | os.PathLike | None = None, poll_s: float = 0.5) -> str | None:
    """With several cards visible, take one that no other abdoseg job holds (a file lock per card, released when
    the process ends) and set CUDA_VISIBLE_DEVICES to it; waits while all are held. Returns the card, or None
    when there is nothing to choose. Must run before CUDA is initialised, which reads the variable once."""
    cards = visible_cards()
    if len(cards) < 2:
        return None
    folder = Path(lock_dir) if lock_dir else Path(tempfile.gettempdir()) / f"abdoseg-gpu-locks-{os.getuid()}"
    folder.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        for card in cards:
            fh = open(folder / re.sub(r"[^\w.-]", "_", card), "w")
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            _held.append(fh)
            os.environ["CUDA_VISIBLE_DEVICES"] = card
            return card
        if not said:
            print(f"waiting for a free GPU: all {len(cards)} visible cards are held by other abdoseg jobs", file=sys.stderr, flush=True)
            said = True
        time.sleep(poll_s)


def cuda_problem() -> str | None:
    """Why torch cannot use CUDA here, in one line; None when it can."""
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU build (torch.version.cuda is None): install a CUDA build (README, GPU)"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    if available:
        return None
    said = [str(w.message).strip().splitlines()[0] for w in caught if str(w.message).strip()]
    if said:  # torch's own reason, e.g. "CUDA initialization: The NVIDIA driver on your system is too old ..."
        return f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) cannot use the GPU: {said[0]}"
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None and not visible_cards():
        return f"CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r} hides every card"
    return f"torch {torch.__version__} (built for CUDA {torch.version.cuda}) finds no GPU: no NVIDIA driver or no card"


def pick_device(name: str) -> torch.device:
    """`auto`: CUDA when torch can use it, else the CPU (warning when nvidia-smi lists a GPU torch cannot use);
    `cpu`; `cuda` or `cuda:N`: that device, or a DeviceError saying why CUDA is not usable."""
    import torch

    if name == "cpu":
        return torch.device("cpu")
    if name not in ("auto", "cuda") and not re.fullmatch(r"cuda:\d+", name):
        raise DeviceError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
    if name in ("auto", "cuda") and torch.version.cuda is not None and not torch.cuda.is_initialized():
        claim_card()  # several cards: this job takes one free card and sees only it
    problem = cuda_problem()
    if problem is None and name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        problem = f"{name} asked, but torch sees {torch.cuda.device_count()} GPU(s)"
    if problem is None:
        return torch.device(name if name.startswith("cuda:") else "cuda")
    if name != "auto":
        raise DeviceError(f"device {name!r} asked, but CUDA is not usable: {problem}")
    gpus = nvidia_smi_gpus()
    if gpus:
        names = ", ".join(sorted({n for n, _ in gpus}))
        runlog.warn(f"nvidia-smi lists {len(gpus)} GPU(s) ({names}) but torch cannot use them, so this runs on the CPU: "
                    f"{problem}")
    return torch.device("cpu")


def describe(device: torch.device, asked: str) -> str:
    """The start-up log line: device, torch and CUDA versions, the GPU's name and memory (or the CPU threads)."""
    import torch

    versions = f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none (CPU build)'}"
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return (f"device {device} (asked {asked}): {props.name}, {props.total_memory / 2**30:.1f} GiB, compute capability "
                f"{props.major}.{props.minor}; {versions}, cuDNN {torch.backends.cudnn.version()}"
                + (f"; CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""))
    gpus = nvidia_smi_gpus()
    seen = f"nvidia-smi lists {', '.join(n for n, _ in gpus)}" if gpus else "no GPU found by nvidia-smi"
    return f"device cpu (asked {asked}): {torch.get_num_threads()} torch threads; {versions}; {seen}"


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), where bf16 autocast speeds training up.

    torch's own probes (private, so a torch without them counts as no): oneDNN's `_is_mkldnn_bf16_supported` also
    says yes on AVX-512 CPUs without bf16 instructions, which would emulate it."""
    import torch

    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def training_autocast(device: torch.device, cpu_bf16: bool) -> torch.dtype | None:
    """The dtype training's forward pass autocasts to, or None for float32 throughout: float16 on CUDA (with the
    gradient scaler), bfloat16 on the CPU with `cpu_bf16` (train.cpu_bf16; bf16 keeps float32's exponent range, so
    it needs no scaler). On a CPU without native bf16 torch emulates it, slower than float32: that is warned."""
    import torch

    if device.type == "cuda":
        return torch.float16
    if not cpu_bf16:
        return None
    if not cpu_has_bf16():
        warnings.warn("train.cpu_bf16 is on, but this CPU has no native bfloat16 (AVX-512 BF16 or AMX): torch "
                      "emulates it, which is usually slower than float32", stacklevel=2)
    return torch.bfloat16


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """With `enabled`, CUDA runs repeat bit for bit: cuDNN deterministic and not benchmarking, torch's deterministic
    algorithms (an op that has none warns, naming itself), cuBLAS's fixed workspace. Without it cuDNN benchmarks
    (faster, not repeatable). The previous settings come back on exit. The CPU is deterministic either way."""
    import torch

    before = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
              torch.is_deterministic_algorithms_warn_only_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = enabled, not enabled
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for repeatable results
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[0], before[1]
        torch.use_deterministic_algorithms(before[2], warn_only=before[3])
        if before[4] is None:
            os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
        else:
            os.environ["CUBLAS_WORKSPACE_CONFIG"] = before[4]
