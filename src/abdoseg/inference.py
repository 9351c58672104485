"""Inference on a processed volume: loading a checkpoint, Gaussian-blended sliding windows, test-time mirroring.

Training (validation) and the predict step both use it; it knows nothing about files on the scan's original grid
(that is abdoseg.predict) nor about optimisers (abdoseg.train).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from . import checkpoint as C
from . import labels as L
from . import vnet
from .preprocess import PreprocessSpec


@dataclass
class Model:
    """A trained network with everything its checkpoint says about how it must be used."""

    net: torch.nn.Module
    spec: PreprocessSpec
    patch: tuple[int, int, int]
    checkpoint: dict


def load_model(path: str | os.PathLike, device: torch.device) -> Model:
    """Load a model checkpoint written by the train step (safely: abdoseg.checkpoint); errors name the file."""
    ckpt = C.load_model_checkpoint(path)
    net = vnet.build(ckpt["model"])
    try:
        net.load_state_dict(ckpt["model_state"])
    except RuntimeError as exc:
        raise C.CheckpointError(f"{path}: its weights do not fit the model it describes ({str(exc).splitlines()[0]})") from None
    net.to(device).eval()
    spec = PreprocessSpec.from_dict(ckpt["preprocess"])
    return Model(net, spec, tuple(ckpt["patch_size"]), ckpt)


def sliding_window_probs(model: torch.nn.Module, image: np.ndarray | torch.Tensor, patch: tuple[int, int, int],
                         overlap: float, device: torch.device, sw_batch_size: int) -> torch.Tensor:
    """Softmax probabilities (C, *shape) over a whole processed volume, on the CPU: Gaussian-blended windows
    (MONAI's inferer), `sw_batch_size` windows per forward pass; the volume, the windows and the blending all on
    `device` (mixed precision on CUDA), one copy there and one back."""
    x = torch.from_numpy(np.array(image, dtype=np.float32))[None, None].to(device)  # a copy: memmaps are read-only
    with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
        logits = sliding_window_inference(x, patch, sw_batch_size, model, overlap=overlap, mode="gaussian",
                                          sw_device=device, device=device)
    return torch.softmax(logits.float(), dim=1)[0].cpu()


def mirrored_probs(infer: Callable[[np.ndarray], np.ndarray], image: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Average `infer`'s class probabilities over every combination of mirrors along `axes` (nnU-Net's TTA).

    A mirror along axis 0 (the patient's left-right in processed RAS space) shows the network a patient whose
    right kidney lies on the left; what it calls kidney_left there is the right kidney. So after flipping the
    probabilities back, the two kidney channels are swapped: test-time mirroring never mixes left and right.
    Use it with a model trained with the same mirrors (`augment.mirror_axes`), or it averages in nonsense.
    """
    total = infer(image)
    combos = [c for n in range(1, len(axes) + 1) for c in itertools.combinations(axes, n)]
    for combo in combos:
        probs = np.flip(infer(np.ascontiguousarray(np.flip(image, combo))), tuple(a + 1 for a in combo))
        if 0 in combo:
            probs = probs[L.SWAP_LEFT_RIGHT]
        total = total + probs
    return total / (1 + len(combos))
