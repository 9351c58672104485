"""GPU jobs under real Snakemake, without a GPU: the cards are faked with CUDA_VISIBLE_DEVICES.

A tiny workflow includes the pipeline's own workflow/rules/gpu.smk; its jobs declare `gpu=gpus_for(device)` as
train and predict do, claim a card as pick_device does, and record when they ran and which card they saw.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

SNAKEFILE = f"""
include: {str(REPO / "workflow" / "rules" / "gpu.smk")!r}

rule all:
    input: expand("out/{{i}}.txt", i=range(4))

rule job:
    output: "out/{{i}}.txt"
    resources: gpu=gpus_for(config["device"])
    shell: "{sys.executable} job.py {{output}} {{config[partners]}}"
"""

JOB = """
import json, os, sys, time
from pathlib import Path
from abdoseg.device import claim_card

out, partners = Path(sys.argv[1]), int(sys.argv[2])
claim_card("locks", poll_s=0.05)
started = Path("started")
started.mkdir(exist_ok=True)
(started / out.stem).touch()
start = time.time()
deadline = start + 60
while len(list(started.iterdir())) < partners:  # the first jobs wait until `partners` jobs have started
    if time.time() > deadline:
        sys.exit(f"{out.stem}: only {len(list(started.iterdir()))} of {partners} jobs started in 60 s")
    time.sleep(0.05)
time.sleep(0.5)
end = time.time()
out.parent.mkdir(exist_ok=True)
out.write_text(json.dumps([start, end, os.environ.get("CUDA_VISIBLE_DEVICES")]))
"""


def _run(tmp_path: Path, cards: str | None, device: str = "auto", partners: int = 1, extra: tuple = ()) -> list[tuple]:
    """Run the 4-job workflow on 4 cores; (start, end, card seen) of each job."""
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "job.py").write_text(JOB)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if cards is not None:
        env["CUDA_VISIBLE_DEVICES"] = cards
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "4", "--config", f"device={device}",
                          f"partners={partners}", *extra], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    return [tuple(json.loads((tmp_path / "out" / f"{i}.txt").read_text())) for i in range(4)]


def _most_at_once(jobs: list[tuple]) -> int:
    events = sorted([(s, 1) for s, _, _ in jobs] + [(e, -1) for _, e, _ in jobs], key=lambda ev: (ev[0], ev[1]))
    now = most = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_one_card_runs_gpu_jobs_one_at_a_time(tmp_path):
    jobs = _run(tmp_path, cards="0")
    spans = sorted(jobs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans  # each ended before the next began
    assert {card for _, _, card in jobs} == {"0"}


def test_two_cards_run_two_jobs_at_once_each_on_its_own_card(tmp_path):
    jobs = _run(tmp_path, cards="0,1", partners=2)
    assert _most_at_once(jobs) == 2
    for a in jobs:
        assert a[2] in {"0", "1"}  # one card, never both
        for b in jobs:
            if a is not b and a[0] < b[1] and b[0] < a[1]:
                assert a[2] != b[2], (a, b)  # jobs that overlapped saw different cards


def test_without_a_gpu_the_jobs_share_the_cores(tmp_path):
    jobs = _run(tmp_path, cards="", partners=4)  # every job waits until all four started: side by side, or a timeout
    assert _most_at_once(jobs) == 4


def test_a_given_gpu_limit_wins(tmp_path):
    jobs = _run(tmp_path, cards="0,1", partners=1, extra=("--resources", "gpu=1"))
    spans = sorted(jobs)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans


def test_the_pipeline_gives_predict_and_train_a_card_only_when_they_use_one(tmp_path):
    for item in ("Snakefile", "params.yaml", "workflow"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, tmp_path / item)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    for cards, device, expected in [("0", "auto", "gpu=1"), ("", "auto", "gpu=0"), ("0", "cpu", "gpu=0")]:
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["train"]["device"] = params["predict"]["device"] = device
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "results/model/best.pt"], cwd=tmp_path,
                             env={**env, "CUDA_VISIBLE_DEVICES": cards}, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-3000:]
        train = run.stdout[run.stdout.index("rule train:"):]
        assert f"{expected}" in train.split("\n\n")[0], (cards, device, train[:600])


def _planned(planned: str, rule: str) -> list[str]:
    """The blocks (input, output, resources, ...) of every job of `rule` in a dry run's plan."""
    return re.findall(rf"^(?:local)?rule {rule}:\n((?:[ \t]+.*\n?)*)", planned, re.M)


@pytest.mark.parametrize("cards, device, gpu_run", [("0", "auto", True), ("", "cuda", True), ("", "auto", False),
                                                    ("0", "cpu", False)])
def test_a_gpu_run_predicts_every_test_case_in_one_job_a_cpu_run_one_job_each(tmp_path, cards, device, gpu_run):
    """Issue #18: where predict takes a GPU (device cuda, or auto with a card), one predict_all job segments every
    test case (CUDA and the model start once) and evaluate and render read its folder; on the CPU, one predict job
    per case. Planned by Snakemake (-n) from a downloaded data set of 15 empty cases, cards faked."""
    from abdoseg.manifest import read_manifest, write_manifest
    from abdoseg.split import split_cases

    for item in ("Snakefile", "params.yaml", "workflow"):
        (shutil.copytree if (REPO / item).is_dir() else shutil.copy)(REPO / item, tmp_path / item)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["predict"]["device"] = device
    params["split"]["fractions"] = {"train": 0.6, "val": 0.2, "test": 0.2}  # 3 test cases of the 15
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    raw = tmp_path / "data" / "raw"
    cases = [f"case{i:02d}" for i in range(15)]
    for folder in ("images", "labels"):
        (raw / folder).mkdir(parents=True)
        for case in cases:
            (raw / folder / f"{case}.nii.gz").touch()
    write_manifest(raw, [{"case": case, "annotated": "liver,kidney_right,kidney_left,spleen"} for case in cases])
    test = split_cases(read_manifest(raw / "manifest.tsv"), params["split"])["test"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "CUDA_VISIBLE_DEVICES": cards}
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "results/metrics/dice_summary.json",
                          "render_all"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    predict, predict_all = _planned(run.stdout, "predict"), _planned(run.stdout, "predict_all")
    evaluate, render = _planned(run.stdout, "evaluate"), _planned(run.stdout, "render")
    assert len(test) == 3 and len(evaluate) == len(render) == len(test), run.stdout[-3000:]
    if gpu_run:
        assert predict == [] and len(predict_all) == 1, run.stdout[-3000:]
        assert all(f"data/raw/images/{case}.nii.gz" in predict_all[0] for case in test)
        assert "output: results/predictions\n" in predict_all[0] and "gpu=1" in predict_all[0]
        assert all(re.search(r"^    input: .*\bresults/predictions(,|$)", job, re.M) for job in evaluate + render)
    else:
        assert predict_all == [] and len(predict) == len(test), run.stdout[-3000:]
        assert sorted(re.search(r"output: (\S+)", job).group(1) for job in predict) == \
            sorted(f"results/predictions/{case}.nii.gz" for case in test)
        assert all("gpu=0" in job for job in predict)
        assert all(re.search(r"^    input: .*\bresults/predictions/case\d\d\.nii\.gz,", job, re.M) for job in evaluate + render)
