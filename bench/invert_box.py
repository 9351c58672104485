"""Time predict's last stage, the inversion of the class probabilities to the scan's grid, with and without the
organs' box (src/abdoseg/preprocess.py, invert_probabilities), on a 512 x 512 x 300 scan.

The bundled real CT is zoomed to a typical abdominal grid (0.8 x 0.8 x 1.5 mm), as bench/gpu_timing.py does, and
segmented by a trained checkpoint (default: the committed run's results/model/best.pt; an untrained network calls
organs everywhere, and then the box is the whole grid). Prints the median of --repeats runs of each and checks that
both give the same labels. Nothing asserts a time.

    python bench/invert_box.py [--model results/model/best.pt] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from scipy import ndimage

from abdoseg import paths as P
from abdoseg.inference import load_model, mirrored_probs, sliding_window_probs
from abdoseg.predict import keep_largest_component
from abdoseg.preprocess import _resized_argmax, from_canonical, invert_probabilities, preprocess, uncropped_channels
from abdoseg.real_ct import load
from abdoseg.specs import PredictSpec


def whole_grid(probs: np.ndarray, geom) -> np.ndarray:
    """The inversion before the box: every class resized over the whole canonical grid."""
    dense = _resized_argmax(uncropped_channels(probs, geom), tuple(geom.processed_shape), tuple(geom.canonical_shape))
    return from_canonical(dense, np.asarray(geom.original_affine))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path(P.MODEL_BEST))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    scan = load()
    shape = (512, 512, 300)
    image = ndimage.zoom(scan.image.astype(np.float32), [s / n for s, n in zip(shape, scan.image.shape)], order=1)
    affine = np.diag([0.8, 0.8, 1.5, 1.0])
    device = torch.device("cpu")
    model = load_model(args.model, device)
    spec = PredictSpec.from_params(yaml.safe_load(Path("params.yaml").read_text())["predict"])
    processed, _, geom = preprocess(image, affine, model.spec)
    probs = mirrored_probs(lambda x: sliding_window_probs(model.net, x, model.patch, spec.overlap, device,
                                                          spec.sw_batch_size).numpy(), processed, spec.mirror_axes)
    if spec.largest_component:  # as predict_array does before it inverts
        drop = keep_largest_component(probs.argmax(0))
        probs[1:, drop] = 0.0
        probs[0, drop] = 1.0
    rows = {}
    for name, fn in (("whole grid", whole_grid), ("organs' box", invert_probabilities)):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            labels = fn(probs, geom)
            times.append(time.perf_counter() - t)
        rows[name] = (statistics.median(times), labels)
    same = np.array_equal(rows["whole grid"][1], rows["organs' box"][1])
    organ_rows = np.flatnonzero((probs.argmax(0) > 0).any((1, 2)))
    print(f"scan {shape}, processed {processed.shape}, organs in processed rows {organ_rows[0]}-{organ_rows[-1]}; "
          f"torch threads {torch.get_num_threads()}")
    for name, (seconds, _) in rows.items():
        print(f"| {name} | {seconds:.2f} s |")
    print(f"same labels: {same}")


if __name__ == "__main__":
    main()
