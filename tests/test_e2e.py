"""The whole pipeline, for real: Snakemake on tiny parameters in a temporary copy, then DVC over the same chain."""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pandas as pd
import pytest
import yaml

from abdoseg import labels as L
from abdoseg import nifti
from abdoseg.metrics import dice
from abdoseg.synthetic import SyntheticConfig, case_name, generate_case
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


def _world_x(labels: np.ndarray, affine: np.ndarray, organ: int) -> float:
    return float((affine[:3, :3] @ np.argwhere(labels == organ).mean(0) + affine[:3, 3])[0])


def test_kidneys_are_on_their_sides_in_every_test_case(run_dir):
    """Left and right through the whole pipeline, RAS and LPS test cases alike: each predicted kidney lies on its
    own side (world x, RAS+: the right kidney at higher x), as in the reference, and the kidneys' Dice beats that
    of the same prediction with the kidneys swapped."""
    test_cases = _split(run_dir)["test"]
    manifest = pd.read_csv(run_dir / "data/raw/manifest.tsv", sep="\t", dtype=str).set_index("case")
    assert set(manifest.loc[test_cases, "axes"]) == {"RAS", "LPS"}  # both storages are among the test cases
    for case in test_cases:
        pred_img = nifti.load(run_dir / f"results/predictions/{case}.nii.gz")
        pred, affine = np.asarray(pred_img.dataobj), pred_img.affine
        ref = np.asarray(nifti.load(run_dir / f"data/raw/labels/{case}.nii.gz").dataobj)
        assert _world_x(ref, affine, L.KIDNEY_RIGHT) > _world_x(ref, affine, L.KIDNEY_LEFT), case
        assert (pred == L.KIDNEY_RIGHT).any() and (pred == L.KIDNEY_LEFT).any(), case
        assert _world_x(pred, affine, L.KIDNEY_RIGHT) > _world_x(pred, affine, L.KIDNEY_LEFT), case

        def kidney_dice(p):
            return sum(dice(p == k, ref == k) for k in (L.KIDNEY_RIGHT, L.KIDNEY_LEFT)) / 2

        assert kidney_dice(pred) > kidney_dice(L.swap_left_right(pred)), case


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


def _params(root: Path) -> dict:
    return yaml.safe_load((root / "params.yaml").read_text())


def test_ingested_cases_read_back_as_generated(run_dir):
    """What the data step wrote is what the generator made: every case's image, labels and affine, voxel for voxel."""
    cfg = SyntheticConfig.from_params(_params(run_dir)["data"]["synthetic"])
    manifest = pd.read_csv(run_dir / "data/raw/manifest.tsv", sep="\t", dtype=str)
    assert list(manifest.case) == [case_name(i) for i in range(cfg.n_cases)]
    for i, name in enumerate(manifest.case):
        case = generate_case(i, cfg)
        img, lab = nifti.load(run_dir / f"data/raw/images/{name}.nii.gz"), nifti.load(run_dir / f"data/raw/labels/{name}.nii.gz")
        np.testing.assert_array_equal(np.asarray(lab.dataobj), case.labels, err_msg=name)
        np.testing.assert_array_equal(np.asarray(img.dataobj), case.image, err_msg=name)
        np.testing.assert_allclose(img.affine, case.affine, atol=1e-6)
        assert manifest["axes"][i] == nifti.axcodes(case.affine)


def test_videos_have_exactly_the_frames_asked_for(run_dir):
    render = _params(run_dir)["render"]
    for case in _split(run_dir)["test"]:
        frames = np.stack(list(iio.imiter(run_dir / f"results/videos/{case}.mp4")))
        assert frames.shape == (render["frames"], render["size"], render["size"], 3), case


class _Cells(HTMLParser):
    """Text of every <td>/<th> cell, row by row, of the table with a given id; and the per-case Dice spans."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.in_table, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.in_table = True
        elif self.in_table and tag == "tr":
            self.rows.append([])
        elif self.in_table and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.in_table = False
        elif self.in_table and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_report_numbers_are_the_metrics_files(run_dir):
    """Every number of the report's summary table and every per-case Dice, parsed back, equals the metrics files
    at the printed precision; every test case has its section and its one video."""
    html = (run_dir / "results/report.html").read_text()
    summary = json.loads((run_dir / "results/metrics/dice_summary.json").read_text())
    parser = _Cells("summary-table")
    parser.feed(html)
    header, *rows = parser.rows
    assert header[:4] == ["organ", "mean Dice", "sd", "median"]
    by_organ = {r[0]: r for r in rows}
    assert set(by_organ) == {*L.ORGANS.values(), "mean over organs"}
    for organ in L.ORGANS.values():
        s, r = summary[organ], by_organ[organ]
        for text, value, places in [(r[1], s["dice_mean"], 3), (r[2], s["dice_sd"], 3), (r[3], s["dice_median"], 3),
                                    (r[4], s["nsd_mean"], 3), (r[5], s["hd95_mean"], 1)]:
            assert float(text) == pytest.approx(value, abs=0.51 * 10 ** -places), (organ, text, value)
        assert int(r[6]) == s["n"]
    assert float(by_organ["mean over organs"][1]) == pytest.approx(summary["mean"]["dice"], abs=5.1e-4)
    per_case = pd.read_csv(run_dir / "results/metrics/dice_per_case.csv")
    test_cases = _split(run_dir)["test"]
    assert html.count("data:video/mp4;base64,") == len(test_cases)
    for case in test_cases:
        section = re.search(f'<div class="case" id="case-{case}">(.*?)</div>', html, re.S)
        assert section, case
        shown = dict(re.findall(r"</span>(\w+)\s*<span class=\"[^\"]*\">([0-9.]+)</span>", section.group(1)))
        expected = per_case[per_case.case == case].set_index("organ").dice
        assert set(shown) == set(expected.index), (case, shown)
        for organ, text in shown.items():
            assert float(text) == pytest.approx(expected[organ], abs=5.1e-4), (case, organ)


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
