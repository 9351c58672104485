"""The whole pipeline, for real: Snakemake on tiny parameters in a temporary copy, then DVC over the same chain."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import yaml

from abdoseg import labels as L
from abdoseg import nifti
from conftest import REPO

pytestmark = pytest.mark.e2e
BIN = str(Path(sys.executable).parent)


def _env() -> dict:
    # DVC would otherwise try to send usage analytics: tests stay off the network
    return {**os.environ, "PATH": BIN + os.pathsep + os.environ["PATH"], "DVC_NO_ANALYTICS": "1"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A copy of the pipeline with tiny params, after `snakemake --cores 2 results/report.html`."""
    root = tmp_path_factory.mktemp("pipeline")
    for item in ("Snakefile", "workflow", "dvc.yaml", "src"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / item, **({"ignore": shutil.ignore_patterns("__pycache__")} if src.is_dir() else {}))
    shutil.copy(REPO / "tests" / "tiny_params.yaml", root / "params.yaml")
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "results/report.html"], cwd=root, env=_env(),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return root


def _split(root: Path) -> dict:
    return json.loads((root / "data" / "splits.json").read_text())


def test_predictions_lie_on_their_input_grids(run_dir):
    test_cases = _split(run_dir)["test"]
    assert test_cases
    for case in test_cases:
        pred = nifti.load(run_dir / f"results/predictions/{case}.nii.gz")
        src = nifti.load(run_dir / f"data/raw/images/{case}.nii.gz")
        assert pred.shape == src.shape
        np.testing.assert_allclose(pred.affine, src.affine, atol=1e-6)
        assert set(np.unique(np.asarray(pred.dataobj))) <= set(range(L.NUM_CLASSES))


def test_metrics_tables_have_all_four_organs(run_dir):
    per_case = pd.read_csv(run_dir / "results/metrics/dice_per_case.csv")
    assert list(per_case.columns[:7]) == ["case", "organ", "dice", "nsd", "hd95", "volume_pred_ml", "volume_ref_ml"]
    assert set(per_case.organ) == set(L.ORGANS.values())
    assert set(per_case.case) == set(_split(run_dir)["test"])
    assert per_case.dice.between(0, 1).all()
    summary = json.loads((run_dir / "results/metrics/dice_summary.json").read_text())
    for organ in L.ORGANS.values():
        assert {"dice_mean", "dice_sd", "dice_median", "n"} <= set(summary[organ])
        d = per_case[per_case.organ == organ].dice
        assert summary[organ]["dice_mean"] == pytest.approx(d.mean(), abs=1e-5)
    assert "dice" in summary["mean"]


def test_videos_decode_with_several_frames(run_dir):
    for case in _split(run_dir)["test"]:
        frames = list(iio.imiter(run_dir / f"results/videos/{case}.mp4"))
        assert len(frames) > 1 and frames[0].ndim == 3


def test_report_refers_to_every_test_case(run_dir):
    html = (run_dir / "results/report.html").read_text()
    for case in _split(run_dir)["test"]:
        assert f'id="case-{case}"' in html
    for organ in L.ORGANS.values():
        assert organ in html
    assert html.count("data:video/mp4;base64,") == len(_split(run_dir)["test"])


def test_report_renders_in_a_real_browser(run_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is missing: `make setup` installs it"
    shot = tmp_path / "report.png"
    run = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                          "--disable-background-networking", "--disable-component-update", "--disable-sync",
                          f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900", f"--screenshot={shot}",
                          (run_dir / "results/report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.exists(), run.stderr[-2000:]
    img = iio.imread(shot)
    assert img.shape[0] == 900 and img.shape[1] == 1200
    assert img[..., :3].std() > 10  # text, table and figures drew, not a blank page


def test_snakemake_reruns_what_a_params_change_touches(run_dir):
    """Each rule declares the params.yaml sections it reads: plain Snakemake reruns evaluate, not train."""
    original = (run_dir / "params.yaml").read_text()
    params = yaml.safe_load(original)
    params["evaluate"]["nsd_tolerance_mm"] = 3.0
    try:
        (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
        run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "results/report.html"],
                             cwd=run_dir, env=_env(), capture_output=True, text=True)
    finally:
        (run_dir / "params.yaml").write_text(original)
    assert run.returncode == 0, run.stderr[-3000:]
    planned = run.stdout
    assert "rule evaluate:" in planned and "rule summarize:" in planned, planned[-3000:]
    assert "rule train:" not in planned and "rule predict:" not in planned and "rule preprocess:" not in planned


def test_dvc_runs_the_same_chain(run_dir):
    """`dvc repro` in a fresh git repository runs every stage through Snakemake; metrics and params are tracked."""
    env = _env()

    def sh(*cmd: str) -> subprocess.CompletedProcess:
        done = subprocess.run(list(cmd), cwd=run_dir, env=env, capture_output=True, text=True)
        assert done.returncode == 0, " ".join(cmd) + "\n" + done.stdout[-3000:] + done.stderr[-3000:]
        return done

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    sh("dvc", "repro")
    lock = yaml.safe_load((run_dir / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"data", "train", "evaluate", "render", "report"}
    metrics = json.loads(sh("dvc", "metrics", "show", "--json").stdout)
    flat = json.dumps(metrics)
    for organ in L.ORGANS.values():
        assert organ in flat
    assert "up to date" in sh("dvc", "status").stdout.lower()
    sh("git", "add", "-A")
    sh("git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "commit", "-qm", "baseline")
    plots = sh("dvc", "plots", "show", "--json").stdout
    assert "train_log.csv" in plots and "dice_per_case.csv" in plots
    diff = json.loads(sh("dvc", "metrics", "diff", "--all", "--json").stdout)
    assert all(organ in json.dumps(diff) for organ in L.ORGANS.values())
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["train"]["epochs"] = 3
    (run_dir / "params.yaml").write_text(yaml.safe_dump(params))
    status = sh("dvc", "status").stdout
    assert "train" in status and "params.yaml" in status
    assert "data:" not in status  # the data stage does not read train params
