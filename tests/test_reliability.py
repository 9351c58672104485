"""Bad input gets one clear line, never a wrong answer (issue #14); docs/reliability.md maps each row to a test here."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest
import torch
import yaml

from abdoseg import cli, files, nifti, params_check, presets, runlog, scan_checks, vnet
from abdoseg import fetch as fetch_module
from abdoseg.evaluate import evaluate_case
from abdoseg.inference import load_model
from abdoseg.ingest import BadCase, ingest, read_image
from abdoseg.predict import estimate_cost, predict_cases, predict_file
from abdoseg.preprocess import PreprocessSpec
from abdoseg.scan_io import read_scan
from abdoseg.specs import PredictSpec
from abdoseg.synthetic import SyntheticConfig, generate_case
from abdoseg.train import checkpoint_meta
from conftest import REPO
from http_server import FileServer
from test_datasets import _archive, _params, md5sum_bytes
from test_dicom import write_series

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="module")
def case():
    """A small synthetic CT (image, labels, affine): a scan every check must accept."""
    c = generate_case(0, SyntheticConfig(spacing_inplane=(3.0, 3.5), slice_thickness=(4.0, 5.0)))
    return c.image, c.labels, c.affine


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An untrained tiny model in a real checkpoint: the checks need no trained one."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["model"].update(base_channels=4, depth=2, deep_supervision=0)
    params["train"]["patch_size"] = [32, 32, 32]
    params["preprocess"]["spacing"] = [5.0, 5.0, 5.0]
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "best.pt"
    torch.save({**checkpoint_meta(params, [], []), "model_state": vnet.build(params["model"]).state_dict()}, path)
    return path


def _nii(path: Path, array: np.ndarray, affine: np.ndarray, no_orientation: bool = False) -> Path:
    """Write a NIfTI; `no_orientation`: qform and sform codes both 0 (only pixdim is left)."""
    img = nib.Nifti1Image(array, None if no_orientation else affine)
    if no_orientation:
        img.header.set_zooms(tuple(float(z) for z in nifti.spacing(affine)))
        img.header.set_qform(None, code=0)
        img.header.set_sform(None, code=0)
    nib.save(img, str(path))
    return path


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run `abdoseg ARGV` in-process: (exit status, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
        raise SystemExit(0)
    return exit_.value.code, capsys.readouterr().err


# ---- one line, no traceback ----

def test_cli_refusal_is_one_line_and_debug_keeps_the_traceback(tmp_path, case, checkpoint, capsys):
    image, _, affine = case
    ct = _nii(tmp_path / "ct.nii.gz", image, affine)
    before = ct.read_bytes()
    code, err = _cli(["predict", str(ct), "-o", str(ct), "--model", str(checkpoint)], capsys)
    assert code == 1 and err.strip().splitlines() == [f"abdoseg: {ct}: the output would overwrite an input; "
                                                      f"choose another output path"]
    assert ct.read_bytes() == before  # nothing destroyed
    with pytest.raises(scan_checks.InputError, match="overwrite an input"):
        cli.main(["predict", str(ct), "-o", str(ct), "--model", str(checkpoint), "--debug"])


def test_a_truncated_nifti_names_its_file(tmp_path, case, checkpoint, capsys):
    image, _, affine = case
    ct = _nii(tmp_path / "ct.nii.gz", image, affine)
    ct.write_bytes(ct.read_bytes()[: ct.stat().st_size // 2])
    code, err = _cli(["predict", str(ct), "-o", str(tmp_path / "seg.nii.gz"), "--model", str(checkpoint)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"abdoseg: {ct}: truncated or corrupt NIfTI file") and "Traceback" not in err
    assert not (tmp_path / "seg.nii.gz").exists()


@pytest.mark.parametrize("name", ["ct.nrrd", "ct.mha"])
def test_nrrd_and_mha_are_refused_by_name(tmp_path, name):
    (tmp_path / name).write_bytes(b"not NIfTI")
    with pytest.raises(ValueError, match=rf"{name}: abdoseg reads NIfTI .*NRRD and MHA"):
        read_scan(tmp_path / name)


def test_a_4d_nifti_is_refused_by_name(tmp_path, case):
    image, _, affine = case
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([image, image], -1), affine), str(path))
    with pytest.raises(ValueError, match=rf"{path}: expected a 3D volume, got shape"):
        read_scan(path)


def test_a_step_failure_prints_one_line_on_the_console_and_the_traceback_in_its_log(tmp_path, capsys):
    log = tmp_path / "logs" / "step.log"
    with pytest.raises(SystemExit) as exit_:
        with runlog.to_file(log):
            print("working")
            raise ValueError("data/raw/images/c1.nii.gz: something is wrong; do this")
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"abdoseg: data/raw/images/c1.nii.gz: something is wrong; do this "
                                        f"(traceback in {log})"]
    assert "working" in log.read_text() and "Traceback" in log.read_text()


def test_one_line_names_the_file_of_an_os_error_and_the_type_of_a_bug():
    assert runlog.one_line(OSError(errno.ENOSPC, "No space left on device", "out/seg.nii.gz")) == \
        "abdoseg: out/seg.nii.gz: No space left on device"
    assert runlog.one_line(KeyError("depth")) == "abdoseg: KeyError: 'depth'"
    assert runlog.one_line(ValueError("a\nb")) == "abdoseg: a b"


def test_a_failing_rule_shows_its_reason_in_the_console(tmp_path):
    for item in ("Snakefile", "params.yaml", "workflow"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["data"].update(source="local", folder=str(tmp_path / "nowhere"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([*SNAKEMAKE, "--cores", "1", "data/raw/manifest.tsv"], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode != 0
    lines = [ln for ln in run.stderr.splitlines() if ln.startswith("abdoseg: ")]
    assert lines == [f"abdoseg: data.folder {tmp_path / 'nowhere'} is not a folder (traceback in "
                     f"results/logs/download.log)"], run.stderr
    assert "Traceback" in (tmp_path / "results/logs/download.log").read_text()


# ---- never a silent wrong answer ----

def test_a_normal_ct_passes_every_check(case, real_ct):
    image, _, affine = case
    assert scan_checks.check_scan(image, affine, "synthetic", target_spacing=(2.5, 2.5, 4.0)) == []
    real_image, _, real_affine = real_ct
    assert scan_checks.check_scan(real_image, real_affine, "real", target_spacing=(2.5, 2.5, 4.0)) == []


def test_unknown_orientation_is_refused(tmp_path, case):
    """Both form codes 0: nibabel's fallback would put the patient's left on the right; refused before reading."""
    image, _, affine = case
    lps = affine @ np.array([[-1, 0, 0, image.shape[0] - 1], [0, -1, 0, image.shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    path = _nii(tmp_path / "ct.nii.gz", image[::-1, ::-1].copy(), lps, no_orientation=True)
    assert nifti.axcodes(nib.load(path).affine) != "LPS"  # what nibabel would silently assume
    with pytest.raises(scan_checks.InputError, match=rf"{path}: orientation unknown \(qform_code and sform_code"):
        read_scan(path)
    with pytest.raises(BadCase, match="orientation unknown"):
        read_image(path, "c1")  # ingest refuses it too


@pytest.mark.parametrize("problem, match", [
    ("singular", "affine is singular"), ("nan", "affine is not finite"),
    ("huge voxels", r"voxel size 3.*outside what a CT has|field of view"), ("metres", "voxel size .* outside what a CT has"),
    ("20 mm field", r"field of view .* outside what a CT covers"), ("slab", r"field of view .* outside")])
def test_impossible_geometry_is_refused(case, problem, match):
    image, _, affine = case
    a = affine.copy()
    shape = image.shape
    if problem == "singular":
        a[:3, 2] = a[:3, 0]
    elif problem == "nan":
        a[0, 3] = np.nan
    elif problem == "huge voxels":
        a[:3, :3] *= 10
    elif problem == "metres":
        a[:3, :3] /= 1000
    elif problem == "20 mm field":
        a[:3, :3] = np.diag([20.0, 20.0, 20.0])
    elif problem == "slab":
        shape = (*shape[:2], 2)
    with pytest.raises(scan_checks.InputError, match=match):
        scan_checks.check_geometry(shape, a, "ct.nii.gz")


@pytest.mark.parametrize("kind, match", [
    ("nan", "NaN or infinite"), ("uint8", "8-bit values"), ("mri", "no air: MRI"),
    ("rescaled", "rescaled or normalised"), ("air", "no body in the scan")])
def test_voxels_that_are_not_a_ct_of_a_body_are_refused(case, kind, match):
    image, _, affine = case
    a = image.astype(np.float32)
    if kind == "nan":
        a[5, 5, 5] = np.nan
    elif kind == "uint8":
        a = np.clip((a + 160) / 400 * 255, 0, 255).astype(np.uint8)
    elif kind == "mri":
        a = np.clip(a + 1000, 0, None) * 0.75
    elif kind == "rescaled":
        a = (a - a.min()) / (a.max() - a.min())
    elif kind == "air":
        a = np.random.default_rng(0).normal(-1000, 20, a.shape).astype(np.float32)
    with pytest.raises(scan_checks.InputError, match=match):
        scan_checks.check_voxels(a, affine, "ct.nii.gz")


def test_coarse_slices_segment_with_a_warning_recorded_in_the_output(tmp_path, case, checkpoint, capsys):
    image, _, affine = case
    coarse = affine.copy()
    coarse[:3, 2] *= 12.0 / nifti.spacing(affine)[2]  # over twice the model's 5 mm grid
    ct = _nii(tmp_path / "ct.nii.gz", image, coarse)
    predict_file(ct, tmp_path / "seg.nii.gz", load_model(checkpoint, torch.device("cpu")), torch.device("cpu"))
    assert f"abdoseg: warning: {ct}: voxels of" in capsys.readouterr().err
    comments = [e.get_content().decode() for e in nib.load(tmp_path / "seg.nii.gz").header.extensions]
    assert any(c.startswith("abdoseg warning: voxels of") and "coarser than the model's grid" in c for c in comments)


@pytest.mark.parametrize("value", [7, -1, 2.5])
def test_evaluate_refuses_labels_the_table_does_not_know(tmp_path, case, value):
    _, labels, affine = case
    ref = labels.astype(np.float32)
    ref[ref == 1] = value
    ref_path = _nii(tmp_path / "ref.nii.gz", ref, affine)
    pred_path = _nii(tmp_path / "pred.nii.gz", labels.astype(np.uint8), affine)
    match = "whole numbers" if value == 2.5 else rf"label values {value:g} are not in abdoseg's label table"
    with pytest.raises(scan_checks.InputError, match=match):
        evaluate_case("c1", pred_path, ref_path, ["liver"], 2.0)


def test_cli_evaluate_refuses_unknown_labels_before_inference(tmp_path, case, checkpoint, capsys):
    image, labels, affine = case
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "labels").mkdir()
    _nii(tmp_path / "data" / "images" / "c1.nii.gz", image, affine)
    lab = labels.astype(np.int16)
    lab[lab == 1] = 7
    label = _nii(tmp_path / "data" / "labels" / "c1.nii.gz", lab, affine)
    code, err = _cli(["evaluate", "--model-path", str(checkpoint), "--data-path", str(tmp_path / "data")], capsys)
    assert code == 1 and err.startswith(f"abdoseg: {label}: label values 7 are not in abdoseg's label table")


# ---- DICOM that is not one plain series ----

def _series(tmp_path: Path, case) -> Path:
    image = case[0][::2, ::2, :].astype(np.int16)
    write_series(tmp_path / "s", image, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (7.0, 7.0, 5.0),
                 np.array([-150.0, -150.0, 0.0]), np.random.default_rng(0))
    return tmp_path / "s"


def _edit(folder: Path, fn) -> None:
    for f in sorted(folder.glob("*.dcm")):
        ds = pydicom.dcmread(f)
        fn(ds)
        ds.save_as(f)


def test_gantry_tilt_multiframe_and_undecodable_dicom_are_refused(tmp_path, case):
    folder = _series(tmp_path, case)
    read_scan(folder)  # the plain series reads

    def tilt(ds):
        x, y, z = (float(v) for v in ds.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y + 0.35 * z, z]
    _edit(folder, tilt)
    with pytest.raises(ValueError, match=r"19\.\d degrees off their normal \(gantry tilt\)"):
        read_scan(folder)

    folder = _series(tmp_path / "mf", case)
    f = next(folder.glob("*.dcm"))
    ds = pydicom.dcmread(f)
    ds.NumberOfFrames, ds.PixelData = 2, ds.PixelData * 2
    ds.save_as(f)
    with pytest.raises(ValueError, match=rf"{f}: a multi-frame \(enhanced\) DICOM file"):
        read_scan(folder)

    folder = _series(tmp_path / "j2k", case)

    def jpeg2000(ds):
        ds.file_meta.TransferSyntaxUID = pydicom.uid.JPEG2000
        ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51" + b"\0" * 64])
        ds["PixelData"].VR = "OB"
    _edit(folder, jpeg2000)
    with pytest.raises(ValueError, match=r"pixel data cannot be decoded \(transfer syntax JPEG 2000"):
        read_scan(folder)


def test_missing_slice_and_localiser_are_refused(tmp_path, case):
    folder = _series(tmp_path, case)
    files_ = sorted(folder.glob("*.dcm"), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    files_[len(files_) // 2].unlink()
    with pytest.raises(ValueError, match="irregular slice spacing.*missing slices"):
        read_scan(folder)
    folder = _series(tmp_path / "scout", case)
    ds = pydicom.dcmread(next(folder.glob("*.dcm")))
    ds.ImageOrientationPatient = [1.0, 0, 0, 0, 0, -1.0]
    ds.save_as(folder / "scout.dcm")
    with pytest.raises(ValueError, match="slices differ in orientation"):
        read_scan(folder)


# ---- nothing destroyed, nothing half-written ----

def test_outputs_onto_inputs_are_refused(tmp_path, case, checkpoint, capsys):
    image, labels, affine = case
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir()
    _nii(data / "images" / "c1.nii.gz", image, affine)
    label = _nii(data / "labels" / "c1.nii.gz", labels.astype(np.uint8), affine)
    before = label.read_bytes()
    code, err = _cli(["evaluate", "--model-path", str(checkpoint), "--data-path", str(data), "--output", str(label)],
                     capsys)
    assert code == 1 and "would overwrite an input" in err and label.read_bytes() == before
    code, err = _cli(["visualize", "--model-path", str(checkpoint), "--data-path", str(data), "--output-path",
                      str(data / "images")], capsys)
    assert code == 1 and "lies inside the input folder" in err
    assert sorted(p.name for p in (data / "images").iterdir()) == ["c1.nii.gz"]
    link = tmp_path / "link.pt"
    link.symlink_to(checkpoint)
    with pytest.raises(scan_checks.InputError, match="overwrite an input"):
        predict_cases([str(data / "images" / "c1.nii.gz")], [str(link)], str(checkpoint))


_WRITER = textwrap.dedent("""
    import sys, time
    from abdoseg.files import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_bytes(b"half")
        print("writing", flush=True)
        time.sleep(60)
""")


def test_a_killed_writer_leaves_no_target_and_its_leftover_goes_with_the_next_write(tmp_path):
    target = tmp_path / "out.nii.gz"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = list(tmp_path.glob(".out.nii.gz.*.part*"))
    assert not target.exists() and len(leftovers) == 1 and f".{proc.pid}." in leftovers[0].name
    files.write_text(target, "complete")
    assert target.read_text() == "complete" and list(tmp_path.glob(".out.nii.gz.*")) == []


def test_a_full_disk_names_the_users_file_and_leaves_nothing(tmp_path, case, monkeypatch):
    image, _, affine = case

    def full(img, path):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(nib, "save", full)
    target = tmp_path / "seg.nii.gz"
    with pytest.raises(OSError) as err:
        nifti.save(image, affine, target)
    assert err.value.filename == str(target) and err.value.errno == errno.ENOSPC
    assert runlog.one_line(err.value).startswith(f"abdoseg: {target}: No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_download_resumes_through_the_download_step(tmp_path, monkeypatch):
    """The download rule's ingest() fails mid-archive (every retry cut short); run again, it continues from the
    .part file with a Range request instead of starting over, and writes the cases."""
    monkeypatch.setattr(fetch_module.time, "sleep", lambda s: None)
    name, blob, _ = _archive("msd_spleen")
    params = _params("msd_spleen", md5=md5sum_bytes(blob), max_cases=3)
    with FileServer({f"/{name}": blob}, break_after=len(blob) // 10, breaks=100) as server:
        params["url"] = server.url(f"/{name}")
        with pytest.raises(fetch_module.DownloadError, match="failed after"):
            ingest(tmp_path / "raw", params, downloads=tmp_path / "dl")
        part = next((tmp_path / "dl").rglob(f"{name}.part"))
        have = part.stat().st_size
        assert 0 < have < len(blob) and not (tmp_path / "raw" / "manifest.tsv").exists()
        server.breaks, first_run, sent = 0, len(server.requests), server.bytes_sent  # the network is back
        ingest(tmp_path / "raw", params, downloads=tmp_path / "dl")
        assert server.requests[first_run][1] == f"bytes={have}-"  # resumed where the first run stopped
        assert server.bytes_sent - sent == len(blob) - have
    assert len(pd.read_csv(tmp_path / "raw" / "manifest.tsv", sep="\t")) == 3 and not part.exists()


_RENDER = textwrap.dedent("""
    import sys
    import numpy as np
    from abdoseg.render import render_video
    lab = np.zeros((40, 40, 30), np.uint8)
    lab[10:30, 10:30, 5:25] = 1
    render_video(lab, np.diag([2.0, 2.0, 2.5, 1.0]), sys.argv[1], frames=int(sys.argv[2]), fps=4, size=64)
""")


def test_a_killed_render_leaves_nothing_half_written_and_the_rerun_finishes(tmp_path):
    video = tmp_path / "c1.mp4"
    proc = subprocess.Popen([sys.executable, "-c", _RENDER, str(video), "100000"])
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in tmp_path.glob(".c1.mp4.*.part*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the render never started writing"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not video.exists() and len(list(tmp_path.glob(".c1.mp4.*.part*"))) == 1
    subprocess.run([sys.executable, "-c", _RENDER, str(video), "3"], check=True)
    assert video.stat().st_size > 0 and list(tmp_path.glob(".c1.mp4.*")) == []


# ---- bounded resources ----

def test_predict_refuses_a_scan_over_the_memory_limit_before_running(tmp_path, case, checkpoint):
    image, _, affine = case
    ct = _nii(tmp_path / "ct.nii.gz", image, affine)
    model = load_model(checkpoint, torch.device("cpu"))
    cost = estimate_cost(image.shape, affine, model.spec, model.patch, 0.5)
    limit = cost.memory_bytes / 2 / 1e9
    with pytest.raises(scan_checks.InputError, match=rf"{ct}: segmenting it would need about .* GB .* {cost.windows} "
                                                     rf"windows\), over the limit of .*predict.max_memory_gb"):
        predict_file(ct, tmp_path / "seg.nii.gz", model, torch.device("cpu"), PredictSpec(max_memory_gb=limit))
    assert not (tmp_path / "seg.nii.gz").exists()


def test_the_estimate_grows_with_the_grid_and_mirrors():
    spec = PreprocessSpec((2.5, 2.5, 4.0), "window", (-200.0, 300.0), -200.0, 500.0, -500.0, 6.0)
    base = estimate_cost((256, 256, 100), np.diag([1.5, 1.5, 3.0, 1.0]), spec, (48, 40, 32), 0.5)
    finer = estimate_cost((256, 256, 100), np.diag([3.0, 3.0, 6.0, 1.0]), spec, (48, 40, 32), 0.5)
    lps = estimate_cost((256, 256, 100), np.diag([-1.5, -1.5, 3.0, 1.0]), spec, (48, 40, 32), 0.5)
    mirrored = estimate_cost((256, 256, 100), np.diag([1.5, 1.5, 3.0, 1.0]), spec, (48, 40, 32), 0.5, (0, 1))
    assert finer.memory_bytes > base.memory_bytes and finer.windows > base.windows
    assert lps == base and mirrored.windows == 4 * base.windows
    assert base.grid == (154, 154, 75)


def test_max_memory_is_a_parameter_and_a_cli_option():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert PredictSpec.from_params(params["predict"]).max_memory_gb == params["predict"]["max_memory_gb"]
    schema = yaml.safe_load((REPO / "workflow/schemas/params.schema.yaml").read_text())
    assert "max_memory_gb" in schema["properties"]["predict"]["properties"]
    assert "--max-memory-gb" in subprocess.run([sys.executable, "-m", "abdoseg.cli", "predict", "--help"],
                                               capture_output=True, text=True).stdout


# ---- validation before any job runs ----

def _params_yaml() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("edit, match", [
    (lambda p: (p["model"].update(depth=3), p["train"].update(patch_size=[50, 40, 32])),
     r"train.patch_size: \[50, 40, 32\] must be divisible by 2\*\*model.depth = 8"),
    (lambda p: p["split"].update(fractions={"train": 0.7, "val": 0.3, "test": 0.3}), "split.fractions: .* sum to 1.3"),
    (lambda p: (p["preprocess"].update(spacing=[0.5, 0.5, 0.5]), p["train"].update(patch_size=[64, 48, 32])),
     r"train.patch_size: .* span 32 x 24 x 16 mm"),
    (lambda p: p["preprocess"].update(spacing=[25.0, 25.0, 25.0]), r"preprocess.spacing: .* larger than any CT"),
    (lambda p: p.update(modle={"depth": 4}), r"modle: not a parameter of params.yaml"),
    (lambda p: p["train"].update(patch_szie=[48, 40, 32]), r"train.patch_szie: not a parameter"),
    (lambda p: p["train"].update(devices=3), r"train.batch_size: 4 must be divisible by train.devices = 3 .* e.g. 3"),
])
def test_cross_field_rules(edit, match):
    params = _params_yaml()
    params_check.check_params(params, _params_yaml())  # params.yaml itself passes
    edit(params)
    with pytest.raises(params_check.ParamsError, match=match):
        params_check.check_params(params, _params_yaml())


def test_every_preset_holds_only_known_keys_and_passes_the_rules():
    folder = REPO / "workflow" / "presets"
    assert presets.available(folder)
    for name in presets.available(folder):
        assert params_check.unknown_keys(yaml.safe_load((folder / f"{name}.yaml").read_text()), _params_yaml()) == []
        params_check.check_params(presets.apply({**_params_yaml(), "preset": name}, folder), _params_yaml())


@pytest.mark.parametrize("preset, line", [
    ("split: {fractions: {train: 0.7, val: 0.3, test: 0.3}}", "abdoseg: split.fractions: "),
    ("modle: {depth: 4}", "abdoseg: workflow/presets/typo.yaml: preset key modle is not a parameter of params.yaml")])
def test_dry_run_stops_with_one_line_naming_the_parameter(tmp_path, preset, line):
    for item in ("Snakefile", "params.yaml", "workflow"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    (tmp_path / "workflow" / "presets" / "typo.yaml").write_text(preset + "\n")
    run = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1", "--config", "preset=typo"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith(line) and "Traceback" not in run.stderr, run.stderr
    assert not (tmp_path / "data").exists()
