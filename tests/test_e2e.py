"""The whole pipeline, for real: `dvc repro` (Snakemake stage by stage) on tiny parameters in a temporary git repository."""

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


def _sh(root: Path, *cmd: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command in `root`; fail the test with its output when it fails."""
    done = subprocess.run(list(cmd), cwd=root, env=env or _env(), capture_output=True, text=True)
    assert done.returncode == 0, " ".join(cmd) + "\n" + done.stdout[-4000:] + done.stderr[-4000:]
    return done


GIT_USER = ("-c", "user.name=test", "-c", "user.email=test@example.invalid")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A git repository holding a copy of the project with tiny params, as committed, after `dvc repro` and a commit
    of what git tracks (dvc.lock and the small metrics files): what a user has after a first run."""
    root = tmp_path_factory.mktemp("pipeline")
    for item in ("Snakefile", "workflow", "dvc.yaml", "src", ".dvc", ".dvcignore", ".gitignore"):
        src = REPO / item
        if src.is_dir():
            shutil.copytree(src, root / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "cache", "tmp",
                                                                            "config.local"))
        else:
            shutil.copy(src, root / item)
    shutil.copy(REPO / "tests" / "tiny_params.yaml", root / "params.yaml")
    _sh(root, "git", "init", "-q")
    _sh(root, "git", "add", "-A")
    _sh(root, "git", *GIT_USER, "commit", "-qm", "project")
    _sh(root, "dvc", "repro")
    _sh(root, "git", "add", "-A")
    _sh(root, "git", *GIT_USER, "commit", "-qm", "first run")
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
        assert int(r[6]) == s["hd95_n_inf"] and int(r[7]) == s["n"]
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


def _stages_run(output: str) -> set[str]:
    """Stages a `dvc repro` / `dvc exp run` ran, from its output."""
    return set(re.findall(r"Running stage '(\w+)'", output))


def test_git_tracks_the_lock_and_the_small_metrics_files(run_dir):
    tracked = set(_sh(run_dir, "git", "ls-files").stdout.split())
    for path in ("dvc.lock", ".dvc/config", "results/metrics/dice_summary.json", "results/metrics/dice_per_case.csv",
                 "results/metrics/real_ct.json", "results/model/train_log.csv"):
        assert path in tracked, path
    assert not any(p.startswith(("data/", "results/predictions", "results/videos")) for p in tracked)
    assert "nothing to commit" in _sh(run_dir, "git", "status").stdout


def test_a_second_repro_does_nothing(run_dir):
    out = _sh(run_dir, "dvc", "repro").stdout
    assert _stages_run(out) == set(), out[-3000:]
    assert "up to date" in _sh(run_dir, "dvc", "status").stdout.lower()
    planned = _sh(run_dir, sys.executable, "-m", "snakemake", "-n", "--cores", "1", "results/report.html").stdout
    assert "Nothing to be done" in planned, planned[-3000:]


def test_real_ct_check_is_a_dvc_metric(run_dir):
    shown = json.loads(_sh(run_dir, "dvc", "metrics", "show", "--json").stdout)
    flat = json.dumps(shown)
    assert "real_ct.json" in flat and "dice_summary.json" in flat
    real = json.loads((run_dir / "results/metrics/real_ct.json").read_text())
    assert set(L.ORGANS.values()) <= set(real) and all(0 <= real[o]["dice"] <= 1 for o in L.ORGANS.values())
    html = (run_dir / "results/report.html").read_text()
    assert 'id="real-ct-table"' in html and "not an expert" in html


def test_a_module_that_predict_imports_reruns_evaluate_not_data_or_train(run_dir):
    module = run_dir / "src" / "abdoseg" / "predict.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# changed\n")
        status = json.loads(_sh(run_dir, "dvc", "status", "--json").stdout)
    finally:
        module.write_text(original)
    assert set(status) == {"evaluate"}, status


def test_a_render_parameter_reruns_render_and_report_only_and_exp_show_lists_dice(run_dir):
    try:
        out = _sh(run_dir, "dvc", "exp", "run", "-S", "render.frames=3").stdout
        assert _stages_run(out) == {"render", "report"}, out[-3000:]
        shown = _sh(run_dir, "dvc", "exp", "show", "--no-pager", "--csv").stdout
        header = shown.splitlines()[0]
        for organ in L.ORGANS.values():
            assert f"{organ}.dice_mean" in header, header
    finally:
        _sh(run_dir, "git", "checkout", "--", ".")
        _sh(run_dir, "dvc", "checkout", "--force")
    frames = list(iio.imiter(run_dir / f"results/videos/{_split(run_dir)['test'][0]}.mp4"))
    assert len(frames) == yaml.safe_load((run_dir / "params.yaml").read_text())["render"]["frames"]


def test_metrics_diff_compares_with_the_committed_run(run_dir):
    committed = json.loads((run_dir / "results/metrics/dice_summary.json").read_text())
    try:
        _sh(run_dir, "dvc", "exp", "run", "-S", "evaluate.nsd_tolerance_mm=6.0")
        diff = json.loads(_sh(run_dir, "dvc", "metrics", "diff", "--json").stdout)
        now = json.loads((run_dir / "results/metrics/dice_summary.json").read_text())
        changes = diff["results/metrics/dice_summary.json"]
        for organ in L.ORGANS.values():
            if now[organ]["nsd_mean"] != committed[organ]["nsd_mean"]:
                row = changes[f"{organ}.nsd_mean"]
                assert row["old"] == pytest.approx(committed[organ]["nsd_mean"])
                assert row["new"] == pytest.approx(now[organ]["nsd_mean"])
        assert any(k.endswith("nsd_mean") for k in changes), changes
        html = (run_dir / "results/report.html").read_text()
        assert 'id="compared-table"' in html and "evaluate.nsd_tolerance_mm" in html
    finally:
        _sh(run_dir, "git", "checkout", "--", ".")
        _sh(run_dir, "dvc", "checkout", "--force")


def test_the_preset_is_one_switch_for_snakemake_and_dvc(run_dir):
    params_path = run_dir / "params.yaml"
    original = params_path.read_text()
    try:
        params_path.write_text(original.replace("preset: null", "preset: vnet-paper"))
        status = json.loads(_sh(run_dir, "dvc", "status", "--json").stdout)
        planned = _sh(run_dir, sys.executable, "-m", "snakemake", "-n", "--cores", "1", "results/report.html").stdout
    finally:
        params_path.write_text(original)
    assert {"data", "train", "evaluate", "render"} <= set(status), status
    assert "rule train:" in planned


def _clone_and_pull(run_dir: Path, dest: Path, remote: list[str], env: dict | None = None) -> Path:
    _sh(run_dir, "dvc", "push", *remote, env=env)
    _sh(dest.parent, "git", "clone", "-q", str(run_dir), str(dest))
    return dest


def _assert_restored(clone: Path, run_dir: Path, env: dict | None = None) -> None:
    """Everything a run made is back, bit for bit, and neither DVC nor Snakemake wants to rerun anything."""
    for rel in ("results/model/best.pt", "results/report.html", "data/raw/manifest.tsv"):
        assert (clone / rel).read_bytes() == (run_dir / rel).read_bytes(), rel
    assert "up to date" in _sh(clone, "dvc", "status", env=env).stdout.lower()
    _sh(clone, "make", "-f", str(REPO / "Makefile"), "restore-times", env=env)
    planned = _sh(clone, sys.executable, "-m", "snakemake", "-n", "--cores", "1", "results/report.html", env=env).stdout
    assert "Nothing to be done" in planned, planned[-3000:]


def test_push_then_pull_into_a_fresh_clone_local_remote(run_dir):
    # beside the first repository, as a user's second clone: the default remote (../abdoseg-dvc-remote) is shared
    clone = _clone_and_pull(run_dir, run_dir.parent / "second_clone", [])
    _sh(clone, "dvc", "pull")
    _assert_restored(clone, run_dir)


def test_push_then_pull_through_an_s3_server(run_dir, tmp_path):
    """A real S3 API (moto's server on 127.0.0.1) as the remote: push, fresh clone, pull."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {**_env(), "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket="abdoseg-test")

        def add_remote(where: Path) -> None:  # --local: the test's remote stays out of the committed .dvc/config
            _sh(where, "dvc", "remote", "add", "--local", "s3", "s3://abdoseg-test/store", env=env)
            _sh(where, "dvc", "remote", "modify", "--local", "s3", "endpointurl", endpoint, env=env)

        add_remote(run_dir)
        clone = _clone_and_pull(run_dir, tmp_path / "clone", ["-r", "s3"], env)
        add_remote(clone)
        _sh(clone, "dvc", "pull", "-r", "s3", env=env)
        _assert_restored(clone, run_dir, env)
    finally:
        server.stop()


def test_snakemake_report_has_the_marked_outputs(run_dir, tmp_path):
    out = tmp_path / "snakemake_report.zip"
    _sh(run_dir, sys.executable, "-m", "snakemake", "--cores", "1", "--report", str(out))
    import zipfile

    names = zipfile.ZipFile(out).namelist()
    assert any(n.endswith("dice_boxplot.png") for n in names) and any(n.endswith("slices.png") for n in names), names[:20]


def test_abdoseg_train_trains_exactly_as_the_rule(run_dir, tmp_path):
    """`abdoseg train --config params.yaml` (the seed's command) on the data step's output gives the rule's weights."""
    import torch

    for item in ("data", "workflow", "params.yaml"):
        src = run_dir / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    _sh(tmp_path, str(Path(BIN) / "abdoseg"), "train", "--config", "params.yaml", "--threads", "2")
    ours = torch.load(tmp_path / "results/model/best.pt", weights_only=True)["model_state"]
    rules = torch.load(run_dir / "results/model/best.pt", weights_only=True)["model_state"]
    assert ours.keys() == rules.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], rules[name], rtol=0, atol=0, msg=name)


def test_abdoseg_train_without_the_data_step_says_what_to_run(tmp_path):
    shutil.copy(REPO / "tests" / "tiny_params.yaml", tmp_path / "params.yaml")
    run = subprocess.run([str(Path(BIN) / "abdoseg"), "train", "--config", "params.yaml"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True)
    assert run.returncode != 0
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "data/splits.json" in lines[0] and "data step" in lines[0], run.stderr


SUBMIT = """#!/bin/sh
# cluster-generic's submit command: $1 is the job script; start it as its own process, print its id as the job id
basename "$1" >> {submitted}
nohup sh "$1" > "{logs}/$(basename "$1").out" 2>&1 < /dev/null &
echo $!
"""


def test_cluster_generic_jobs_reproduce_the_local_run(run_dir, tmp_path):
    """The remote-job path (issue #16): Snakemake's cluster-generic executor submits every job as its own process
    through a job script that re-parses the workflow, as on SLURM or Kubernetes. From the local run's data, it
    trains, then predicts and scores one test case (the cheapest chain through both GPU rules: the test suite has
    a time budget); model, prediction and metrics equal the local run's bit for bit."""
    import torch

    work = tmp_path / "remote"
    work.mkdir()
    for item in ("Snakefile", "workflow", "params.yaml", "data"):
        (shutil.copytree if (run_dir / item).is_dir() else shutil.copy2)(run_dir / item, work / item)  # keeps times
    logs = tmp_path / "job_logs"
    logs.mkdir()
    submitted = tmp_path / "submitted.txt"
    submit = tmp_path / "submit.sh"
    submit.write_text(SUBMIT.format(submitted=submitted, logs=logs))
    submit.chmod(0o755)
    case = _split(run_dir)["test"][0]
    run = subprocess.run([sys.executable, "-m", "snakemake", "--executor", "cluster-generic",
                          "--cluster-generic-submit-cmd", str(submit), "--jobs", "2", "--cores", "all",
                          "--seconds-between-status-checks", "1", "--latency-wait", "10",
                          "--allowed-rules", "train", "predict", "evaluate", "--",  # the data as the local run left it
                          f"results/metrics/per_case/{case}.csv"], cwd=work, env=_env(), capture_output=True, text=True)
    job_logs = "".join(p.read_text()[-1500:] for p in logs.iterdir())
    assert run.returncode == 0, run.stderr[-4000:] + job_logs
    rules = [name.split(".")[1] for name in submitted.read_text().split()]  # snakejob.{rule}.{jobid}.sh
    assert rules == ["train", "predict", "evaluate"], rules
    ours = torch.load(work / "results/model/best.pt", weights_only=False)["model_state"]
    local = torch.load(run_dir / "results/model/best.pt", weights_only=False)["model_state"]
    assert ours.keys() == local.keys() and all(torch.equal(ours[k], local[k]) for k in ours)
    prediction = f"results/predictions/{case}.nii.gz"
    np.testing.assert_array_equal(np.asarray(nifti.load(work / prediction).dataobj),
                                  np.asarray(nifti.load(run_dir / prediction).dataobj))
    metrics = f"results/metrics/per_case/{case}.csv"
    assert (work / metrics).read_text() == (run_dir / metrics).read_text()


def test_a_gpu_run_predicts_every_test_case_in_one_job_as_the_per_case_jobs_do(run_dir, tmp_path):
    """Issue #18, run for real: where predict would take a card (faked with CUDA_VISIBLE_DEVICES=0 and predict.device
    auto; torch here is a CPU build, so the job runs on the CPU), one predict_all job segments every test case with
    the model loaded once, evaluate reads the folder, and predictions and metrics equal the per-case jobs' bit for bit."""
    work = tmp_path / "gpu"
    work.mkdir()
    for item in ("Snakefile", "workflow", "data", "results/model"):
        (shutil.copytree if (run_dir / item).is_dir() else shutil.copy2)(run_dir / item, work / item)  # keeps times
    params = yaml.safe_load((run_dir / "params.yaml").read_text())
    params["predict"]["device"] = "auto"
    (work / "params.yaml").write_text(yaml.safe_dump(params))
    test = _split(run_dir)["test"]
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--allowed-rules", "predict_all", "evaluate",
                          "--", *(f"results/metrics/per_case/{case}.csv" for case in test)], cwd=work,
                         env={**_env(), "CUDA_VISIBLE_DEVICES": "0"}, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-4000:]
    assert (work / "results/benchmarks/predict_all.tsv").exists() and not (work / "results/logs/predict").exists()
    assert (work / "results/logs/predict_all.log").read_text().count("device cpu (asked auto)") == 1  # one start-up
    for case in test:
        prediction, metrics = f"results/predictions/{case}.nii.gz", f"results/metrics/per_case/{case}.csv"
        np.testing.assert_array_equal(np.asarray(nifti.load(work / prediction).dataobj),
                                      np.asarray(nifti.load(run_dir / prediction).dataobj))
        assert (work / metrics).read_text() == (run_dir / metrics).read_text()
