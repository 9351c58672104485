"""Run bad inputs and faults through the CLI and the pipeline, each in its own temporary folder, and classify
what happens (issue #14): a clear one-line refusal, a warning recorded with the output, a traceback (or another
refusal in the wrong form), or a silent wrong answer.

    PYTHONPATH=src python bench/bad_inputs.py            # the code under src/
    PYTHONPATH=/tmp/old/src python bench/bad_inputs.py --repo /tmp/old   # another checkout, for a before/after

It builds its own inputs (a small synthetic CT, an untrained tiny checkpoint: inference plumbing needs no trained
model) and prints a Markdown table and the counts per outcome. Nothing here asserts; tests/test_reliability.py does.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import torch
import yaml

from abdoseg import nifti, vnet
from abdoseg.synthetic import SyntheticConfig, generate_case
from abdoseg.train import checkpoint_meta

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 300

REFUSED, WARNED, WRONG_FORM, SILENT = "one-line refusal", "warning recorded", "traceback or wrong form", "silent wrong output"


def make_checkpoint(repo: Path, path: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["model"].update(base_channels=4, depth=2, deep_supervision=0)
    params["train"]["patch_size"] = [32, 32, 32]
    params["preprocess"]["spacing"] = [5.0, 5.0, 5.0]
    torch.manual_seed(0)
    torch.save({**checkpoint_meta(params, [], []), "model_state": vnet.build(params["model"]).state_dict()}, path)


def save_nii(array: np.ndarray, affine: np.ndarray | None, path: Path, codes: tuple[int, int] = (1, 1)) -> Path:
    """A NIfTI with chosen qform and sform codes (both 0: no orientation), written by nibabel directly."""
    img = nib.Nifti1Image(array, None if codes == (0, 0) else affine)
    if codes == (0, 0):
        img.header.set_zooms(tuple(float(z) for z in np.sqrt((affine[:3, :3] ** 2).sum(0))))
        img.header.set_qform(None, code=0)
        img.header.set_sform(None, code=0)
    nib.save(img, str(path))
    return path


def run(cmd: list[str], cwd: Path) -> tuple[int, str, float]:
    start = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S, env=os.environ.copy())
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired as err:
        out = (err.stdout or b"").decode() + (err.stderr or b"").decode() if isinstance(err.stdout, bytes) else ""
        return -9, out + f"\n(killed after {TIMEOUT_S} s)", time.perf_counter() - start


def classify(rc: int, output: str, warned_in_output: bool, destroyed: bool) -> str:
    """The outcome of one run of an input that must be refused or warned about."""
    if destroyed:
        return SILENT
    if rc == 0:
        return WARNED if warned_in_output else SILENT
    if rc == -9:
        return SILENT  # a hang is no answer either
    lines = [ln for ln in output.splitlines() if ln.strip()]
    one_liner = any(ln.startswith("abdoseg") and ": " in ln and "warning" not in ln for ln in lines)
    if "Traceback" in output or not one_liner:
        return WRONG_FORM
    return REFUSED


class Bench:
    def __init__(self, repo: Path, work: Path, only: str = ""):
        self.repo, self.work, self.only = repo, work, only
        self.model = work / "model.pt"
        make_checkpoint(repo, self.model)
        case = generate_case(0, SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0)))
        self.image, self.labels, self.affine = case.image, case.labels, case.affine
        self.rows: list[tuple[str, str, str]] = []

    def folder(self) -> Path:
        return Path(tempfile.mkdtemp(dir=self.work))

    def cli(self, name: str, args: Callable[[Path], list[str]], check_output: Path | None = None,
            watch: list[str] = ()) -> None:
        """Run `abdoseg ARGS` in a fresh folder prepared by `args(folder)`; `watch` are files that must survive."""
        if self.only not in name:
            return
        d = self.folder()
        argv = args(d)
        before = {w: (d / w).read_bytes() for w in watch if (d / w).exists()}
        rc, out, secs = run([sys.executable, "-m", "abdoseg.cli", *argv], d)
        destroyed = any(not (d / w).exists() or (d / w).read_bytes() != b for w, b in before.items())
        recorded = False
        if rc == 0 and check_output is not None and (d / check_output).exists() and str(check_output).endswith(".nii.gz"):
            recorded = any(b"warning" in e.get_content() for e in nib.load(d / check_output).header.extensions)
        outcome = classify(rc, out, recorded and "warning" in out, destroyed)
        self.rows.append((name, outcome, _summary(rc, out, secs)))
        print(f"{name}: {outcome}", file=sys.stderr, flush=True)

    def snakemake(self, name: str, edit: Callable[[dict], None], dry: bool = True, preset: dict | None = None) -> None:
        if self.only not in name:
            return
        d = self.folder()
        for item in ("Snakefile", "params.yaml", "workflow"):
            src = self.repo / item
            (shutil.copytree if src.is_dir() else shutil.copy)(src, d / item)
        params = yaml.safe_load((d / "params.yaml").read_text())
        edit(params)
        (d / "params.yaml").write_text(yaml.safe_dump(params))
        extra = []
        if preset is not None:  # selected as each version selects presets: `preset: NAME` since main's 1ceb9b4
            (d / "workflow" / "presets" / "typo.yaml").write_text(yaml.safe_dump(preset))
            by_key = "preset" in yaml.safe_load((self.repo / "params.yaml").read_text())
            extra = ["--config", "preset=typo"] if by_key else ["--configfile", "workflow/presets/typo.yaml"]
        rc, out, secs = run([sys.executable, "-m", "snakemake", "data/raw/manifest.tsv", *(["-n"] if dry else []),
                             "--cores", "1", *extra], d)  # --configfile takes several files: it goes last
        console = "\n".join(ln for ln in out.splitlines() if "abdoseg:" in ln or "Traceback" in ln or "Error" in ln)
        outcome = classify(rc, console if console else out, False, False)
        if rc != 0 and "Traceback" in out and outcome == REFUSED:
            outcome = WRONG_FORM
        self.rows.append((name, outcome, _summary(rc, console or out, secs)))
        print(f"{name}: {outcome}", file=sys.stderr, flush=True)

    # ---- inputs ----
    def scan(self, d: Path, name: str = "ct.nii.gz", image: np.ndarray | None = None, affine: np.ndarray | None = None,
             codes: tuple[int, int] = (1, 1)) -> str:
        save_nii(self.image if image is None else image, self.affine if affine is None else affine, d / name, codes)
        return name

    def predict(self, name: str, make: Callable[[Path], str], extra: list[str] = ()) -> None:
        self.cli(name, lambda d: ["predict", make(d), "-o", "seg.nii.gz", "--model", str(self.model), "--threads", "1",
                                  *extra], check_output=Path("seg.nii.gz"))

    def evaluate_labels(self, name: str, values: np.ndarray) -> None:
        def make(d: Path) -> list[str]:
            (d / "data" / "images").mkdir(parents=True)
            (d / "data" / "labels").mkdir()
            self.scan(d / "data" / "images", "c1.nii.gz")
            lab = self.labels.astype(values.dtype)
            lab[lab == 1] = values[0]
            save_nii(lab, self.affine, d / "data" / "labels" / "c1.nii.gz")
            return ["evaluate", "--model-path", str(self.model), "--data-path", "data", "--threads", "1"]
        self.cli(name, make)

    def dicom(self, name: str, damage: Callable[[Path], None]) -> None:
        sys.path.insert(0, str(self.repo / "tests"))
        from test_dicom import write_series  # the test suite's writer of a shuffled LPS series

        def make(d: Path) -> list[str]:
            hu = self.image[::2, ::2, :].astype(np.int16)
            write_series(d / "series", hu, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (7.0, 7.0, 5.0),
                         np.array([-150.0, -150.0, 0.0]), np.random.default_rng(0))
            damage(d / "series")
            return ["predict", "series", "-o", "seg.nii.gz", "--model", str(self.model), "--threads", "1"]
        self.cli(name, make, check_output=Path("seg.nii.gz"))


def _summary(rc: int, out: str, secs: float) -> str:
    lines = [ln.strip() for ln in out.splitlines() if ln.strip() and not ln.strip().startswith(("wrote", "[", "Building",
                                                                                                "Assuming", "host:"))]
    last = next((ln for ln in reversed(lines) if ln.startswith("abdoseg:")), lines[-1] if lines else "")
    n_tb = sum(1 for ln in out.splitlines() if ln.startswith("Traceback"))
    return f"rc {rc}, {len(lines)} lines{', traceback' if n_tb else ''}, {secs:.0f} s: {last[:150]}".replace("|", "/")


def _dicom_edits() -> dict[str, Callable[[Path], None]]:
    import pydicom

    def each(folder: Path, fn) -> None:
        for i, f in enumerate(sorted(folder.glob("*.dcm"))):
            ds = pydicom.dcmread(f)
            if fn(i, ds) is not False:
                ds.save_as(f)

    def missing(folder: Path) -> None:
        files = sorted(folder.glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
        files[len(files) // 2].unlink()

    def localiser(folder: Path) -> None:
        ds = pydicom.dcmread(next(folder.glob("*.dcm")))
        ds.ImageOrientationPatient = [1.0, 0, 0, 0, 0, -1.0]
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / "scout.dcm")

    def tilt(folder: Path) -> None:
        def shift(i, ds):
            pos = [float(v) for v in ds.ImagePositionPatient]
            ds.ImagePositionPatient = [pos[0], pos[1] + 0.35 * pos[2], pos[2]]  # about 19 degrees
        each(folder, shift)

    def multiframe(folder: Path) -> None:
        f = next(folder.glob("*.dcm"))
        ds = pydicom.dcmread(f)
        ds.NumberOfFrames = 2
        ds.PixelData = ds.PixelData * 2
        ds.save_as(f)

    def compressed(folder: Path) -> None:
        def j2k(i, ds):
            ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000
            ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 64])
            ds["PixelData"].VR = "OB"
        each(folder, j2k)

    return {"DICOM series with a missing slice": missing, "DICOM localiser mixed into the series": localiser,
            "DICOM series with gantry tilt": tilt, "multi-frame DICOM": multiframe,
            "compressed DICOM (JPEG 2000), no decoder": compressed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(HERE.parent), help="checkout whose Snakefile and params.yaml to use")
    parser.add_argument("--only", default="", help="run only the inputs whose name contains this")
    args = parser.parse_args()
    repo = Path(args.repo).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        b = Bench(repo, Path(tmp), args.only)
        img, aff = b.image, b.affine

        def with_voxels(fn):
            return lambda d: b.scan(d, image=fn(img.astype(np.float32).copy()))

        def with_affine(a):
            return lambda d: b.scan(d, affine=a)

        b.cli("predict -o onto its own input", lambda d: ["predict", b.scan(d), "-o", "ct.nii.gz", "--model",
                                                           str(b.model), "--threads", "1"], watch=["ct.nii.gz"])
        b.cli("predict: missing input file", lambda d: ["predict", "nope.nii.gz", "-o", "seg.nii.gz", "--model",
                                                         str(b.model)])
        lps = aff @ np.array([[-1, 0, 0, img.shape[0] - 1], [0, -1, 0, img.shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
        b.predict("qform and sform codes both 0 (stored LPS)", lambda d: b.scan(d, image=img[::-1, ::-1].copy(),
                                                                                 affine=lps, codes=(0, 0)))
        singular = aff.copy()
        singular[:3, 2] = singular[:3, 0]
        b.predict("singular affine", with_affine(singular))
        nan_aff = aff.copy()
        nan_aff[0, 3] = np.nan
        b.predict("affine with NaN", with_affine(nan_aff))

        def nan(a):
            a[10:20, 10:20, 5:8] = np.nan
            return a
        b.predict("NaN voxels", with_voxels(nan))
        b.predict("uint8 screenshot values", lambda d: b.scan(d, image=np.clip((img + 160) / 400 * 255, 0, 255).astype(np.uint8)))
        b.predict("MRI-like intensities (0-1500)", with_voxels(lambda a: np.clip(a + 1000, 0, None) * 0.75))
        b.predict("rescaled to [0, 1]", with_voxels(lambda a: (a - a.min()) / (a.max() - a.min())))
        b.predict("a scan of air", with_voxels(lambda a: np.full_like(a, -1000.0) + np.random.default_rng(0).normal(0, 20, a.shape)))
        big = aff.copy()
        big[:3, :3] *= 20.0 / np.sqrt((aff[:3, :3] ** 2).sum(0))
        b.predict("20 mm voxels (a 3-4 m field of view)", with_affine(big))
        tiny = aff.copy()
        tiny[:3, :3] /= 1000.0
        b.predict("voxel size in metres (0.003 mm)", with_affine(tiny))
        coarse = aff.copy()
        coarse[:3, 2] *= 12.0 / np.sqrt((aff[:3, 2] ** 2).sum())
        b.predict("12 mm slices, over twice the model's 5 mm grid (should warn)", with_affine(coarse))
        b.predict("estimate above --max-memory-gb", lambda d: b.scan(d), extra=["--max-memory-gb", "0.001"])

        def truncated(d: Path) -> str:
            b.scan(d)
            data = (d / "ct.nii.gz").read_bytes()
            (d / "ct.nii.gz").write_bytes(data[: len(data) // 2])
            return "ct.nii.gz"
        b.predict("truncated .nii.gz", truncated)

        def four_d(d: Path) -> str:
            nib.save(nib.Nifti1Image(np.stack([img, img], -1), aff), str(d / "ct.nii.gz"))
            return "ct.nii.gz"
        b.predict("4D NIfTI", four_d)

        def nrrd(d: Path) -> str:
            (d / "ct.nrrd").write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 4\nencoding: raw\n\n" + b"\0" * 128)
            return "ct.nrrd"
        b.predict("NRRD file", nrrd)

        def mha(d: Path) -> str:
            (d / "ct.mha").write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_SHORT\n"
                                       b"ElementDataFile = LOCAL\n" + b"\0" * 128)
            return "ct.mha"
        b.predict("MHA file", mha)
        for name, damage in _dicom_edits().items():
            b.dicom(name, damage)

        b.evaluate_labels("evaluate: label value 7", np.array([7], np.int16))
        b.evaluate_labels("evaluate: label value -1", np.array([-1], np.int16))
        b.evaluate_labels("evaluate: label value 2.5", np.array([2.5], np.float32))

        def eval_onto_label(d: Path) -> list[str]:
            (d / "data" / "images").mkdir(parents=True)
            (d / "data" / "labels").mkdir()
            b.scan(d / "data" / "images", "c1.nii.gz")
            save_nii(b.labels, aff, d / "data" / "labels" / "c1.nii.gz")
            return ["evaluate", "--model-path", str(b.model), "--data-path", "data", "--threads", "1",
                    "--output", "data/labels/c1.nii.gz"]
        b.cli("evaluate --output onto a label file", eval_onto_label, watch=["data/labels/c1.nii.gz"])

        def patch(p):
            p["train"]["patch_size"] = [50, 40, 32]

        def fractions(p):
            p["split"]["fractions"] = {"train": 0.7, "val": 0.3, "test": 0.3}

        def thin_patch(p):
            p["preprocess"]["spacing"] = [0.5, 0.5, 0.5]

        def missing_folder(p):
            p["data"].update(source="local", folder="/nonexistent/folder")
        b.snakemake("pipeline: patch_size not divisible by 2**depth", patch)
        b.snakemake("pipeline: split fractions sum to 1.3", fractions)
        b.snakemake("pipeline: patch of 24 x 20 x 16 mm (spacing against patch)", thin_patch)
        b.snakemake("pipeline: a preset with an unknown key (modle.depth)", lambda p: None,
                    preset={"modle": {"depth": 4}})
        b.snakemake("pipeline: a rule fails (data.folder missing)", missing_folder, dry=False)

    print("| input or fault | outcome | what the user saw |\n|---|---|---|")
    for name, outcome, summary in b.rows:
        print(f"| {name} | {outcome} | {summary} |")
    counts = Counter(outcome for _, outcome, _ in b.rows)
    print("\n" + ", ".join(f"{k}: {counts.get(k, 0)}" for k in (REFUSED, WARNED, WRONG_FORM, SILENT)))


if __name__ == "__main__":
    main()
