"""Speed benchmarks of the pipeline's steps, in-process (no Snakemake start-up), on this machine.

`make bench` runs it; it prints a Markdown table and the machine, then the resample step against MONAI's chain
(preprocess_vs_monai.py, issue #5), which go into docs/benchmarks.md.
Each figure is the median of repeated runs; nothing here is a test and nothing asserts a time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from abdoseg import ingest, nifti
from abdoseg.preprocess import PreprocessSpec, invert_labels, preprocess
from abdoseg.synthetic import SyntheticConfig, generate_case

from preprocess_vs_monai import REAL_CT, bench_preprocess_vs_monai, median_time  # bench/ is on sys.path as a script

def timed(fn, repeat: int = 3) -> float:
    """Median wall time of `repeat` calls of `fn`."""
    return median_time(fn, repeat)[0]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {cpu}, {torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}"


def bench_synthetic(n: int) -> list[tuple[str, str]]:
    cfg = SyntheticConfig()
    gen = [timed(lambda i=i: generate_case(i, cfg), repeat=1) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for i in range(n):
            c = generate_case(i, cfg)
            ingest.write_case(tmp, f"c{i}", c.image, c.labels, c.affine, "synthetic")
        total = (time.perf_counter() - t) / n
    return [("synthetic: generate one default case (median)", f"{statistics.median(gen):.2f} s"),
            ("synthetic: generate + write NIfTI (mean)", f"{total:.2f} s")]


def bench_resample(n: int) -> list[tuple[str, str]]:
    import yaml

    spec = PreprocessSpec.from_params(yaml.safe_load(Path("params.yaml").read_text())["preprocess"])
    cases = [generate_case(i, SyntheticConfig()) for i in range(n)]
    fwd = [timed(lambda c=c: preprocess(c.image, c.affine, spec, c.labels)) for c in cases]
    geoms = [preprocess(c.image, c.affine, spec, c.labels) for c in cases]
    inv = [timed(lambda g=g: invert_labels(g[1], g[2])) for g in geoms]
    rows = [("resample: forward, image + labels, synthetic case", f"{statistics.median(fwd):.3f} s"),
            ("resample: inverse onto the original grid, synthetic case", f"{statistics.median(inv):.3f} s")]
    if (REAL_CT / "example_ct_sm.nii.gz").exists():
        img = nifti.load(REAL_CT / "example_ct_sm.nii.gz")
        arr = np.asanyarray(img.dataobj)
        rows.append(("resample: forward, real CT fixture (122x101x30)", f"{timed(lambda: preprocess(arr, img.affine, spec)):.3f} s"))
    return rows


def bench_train_step(params_path: Path) -> list[tuple[str, str]]:
    import yaml

    from abdoseg import vnet
    from abdoseg.train import training_loss

    params = yaml.safe_load(params_path.read_text())
    net = vnet.build(params["model"])
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    loss_fn = training_loss(params["model"])
    bs, patch = int(params["train"]["batch_size"]), params["train"]["patch_size"]
    x, y = torch.rand(bs, 1, *patch), torch.randint(0, 5, (bs, 1, *patch)).float()

    def step():
        opt.zero_grad()
        loss_fn(net(x), y).backward()
        opt.step()

    step()
    return [(f"train: one step, batch {bs}, patch {'x'.join(map(str, patch))}, default VNet", f"{timed(step, 5):.2f} s")]


def _predict_child(ckpt: str, src: str, out: str, overlap: float, queue) -> None:
    """Predict in a fresh process, so that its peak memory is the prediction's own."""
    import resource

    from abdoseg.inference import load_model
    from abdoseg.predict import StageTimer, predict_file
    from abdoseg.specs import PredictSpec

    torch.set_num_threads(2)
    timer = StageTimer()
    predict_file(src, out, load_model(ckpt, torch.device("cpu")), torch.device("cpu"), PredictSpec("cpu", overlap), timer)
    queue.put((dict(timer), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def bench_predict(params_path: Path, big: bool) -> list[tuple[str, str]]:
    """Seconds per stage of predicting one scan with the default (untrained) VNet, and the process's peak memory."""
    import multiprocessing as mp

    import yaml

    from abdoseg import vnet
    from abdoseg.train import checkpoint_meta

    params = yaml.safe_load(params_path.read_text())
    rows = []
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "model.pt"
        torch.save({**checkpoint_meta(params, [], []), "model_state": vnet.build(params["model"]).state_dict()}, ckpt)
        cases = [("default synthetic case", SyntheticConfig())]
        if big:  # a full-resolution abdomen: about 500 x 500 x 270 voxels
            cases.append(("full-resolution scan", SyntheticConfig(spacing_inplane=(0.75, 0.78), slice_thickness=(1.0, 1.0))))
        for name, cfg in cases:
            case = generate_case(1, cfg)
            src = Path(tmp) / "ct.nii.gz"
            nifti.save(case.image, case.affine, src)
            queue = ctx.Queue()
            proc = ctx.Process(target=_predict_child, args=(str(ckpt), str(src), str(Path(tmp) / "seg.nii.gz"),
                                                              float(params["predict"]["overlap"]), queue))
            proc.start()
            stages, peak_kib = queue.get()
            proc.join()
            detail = ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
            rows.append((f"predict on CPU, {name} {'x'.join(map(str, case.image.shape))}: {sum(stages.values()):.1f} s "
                         f"(seconds per stage: {detail})", f"peak memory {peak_kib / 1024 ** 2:.2f} GiB"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=6)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--big", action="store_true", help="also predict a 512x512x300 scan (about a minute, a few GiB)")
    args = ap.parse_args()
    rows = (bench_predict(Path(args.params), args.big) + bench_synthetic(args.cases) + bench_resample(args.cases)
            + bench_train_step(Path(args.params)))
    print(f"machine: {machine()}\n")
    print("| what | figure |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")
    print("\n" + bench_preprocess_vs_monai(Path(args.params), args.cases, REAL_CT))


if __name__ == "__main__":
    main()
