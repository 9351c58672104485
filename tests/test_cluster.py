"""Issue #16: the real-data GPU preset, and the SLURM and Kubernetes profiles (planned, not submitted: no cluster here).

The remote-job path itself runs in tests/test_e2e.py (cluster-generic executor, each job its own process).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from abdoseg import presets
from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
from dvc_deps import rules  # tools/ is not a package: on the path above

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
GPU_RULES = {"train", "predict", "predict_all", "real_ct"}


def _params(preset: str | None = None) -> dict:
    config = yaml.safe_load((REPO / "params.yaml").read_text())
    config["preset"] = preset
    return presets.apply(config, REPO / "workflow" / "presets")


def test_gpu_real_data_preset_is_valid_and_is_the_recipe():
    params = _params("gpu-real-data")  # presets.apply refuses a key params.yaml does not have
    jsonschema.validate(params, yaml.safe_load((REPO / "workflow" / "schemas" / "params.schema.yaml").read_text()))
    model, train = params["model"], params["train"]
    assert model == _params("vnet-paper")["model"]  # the paper's VNet, as its own preset says
    assert all(p % 2 ** model["depth"] == 0 for p in train["patch_size"]), train["patch_size"]
    assert (train["lr"], train["batch_size"], train["epochs"]) == (1.0e-4, 4, 50)
    assert train["patches_per_epoch"] == 250 * train["batch_size"]  # nnU-Net's 250 iterations an epoch
    assert params["preprocess"]["normalize"] == "percentile"
    assert train["device"] == "cuda"  # mixed precision is what the train step does on CUDA
    assert train["workers"] >= 2  # several data workers keep the GPU fed (docs/benchmarks.md, "Data path")
    assert params["predict"]["device"] == "cuda"  # the test set in one predict_all job (issue #18), wherever planned


@pytest.mark.parametrize("profile", ["slurm", "kubernetes"])
def test_profile_names_real_rules_and_sizes_the_gpu_jobs(profile):
    config = yaml.safe_load((REPO / "workflow" / "profiles" / profile / "config.yaml").read_text())
    by_name = rules()
    assert set(config["set-resources"]) <= set(by_name), set(config["set-resources"]) - set(by_name)
    assert set(config["set-threads"]) <= set(by_name), set(config["set-threads"]) - set(by_name)
    for rule in GPU_RULES:
        assert re.search(r"resources:\s*\n\s*gpu=gpus_for\(", by_name[rule].body), f"rule {rule} has no gpu resource"
        assert config["set-resources"][rule]["gpu"] == 1, f"{profile}: {rule} does not ask the cluster for a GPU"
        assert config["set-resources"][rule]["mem_mb"] > 0
    assert all("gpu" not in by_name[r].body for r in set(by_name) - GPU_RULES)
    if profile == "slurm":
        assert all(config["set-resources"][r]["slurm_partition"] == "YOUR_GPU_PARTITION" for r in GPU_RULES)
        assert all(config["set-resources"][r]["runtime"] > 0 for r in GPU_RULES)
    else:
        assert all(config["set-resources"][r]["gpu_manufacturer"] == "nvidia" for r in GPU_RULES)


def _copy_pipeline(dest: Path) -> None:
    for item in ("Snakefile", "params.yaml", "workflow"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)


def _rule_block(planned: str, rule: str) -> str:
    m = re.search(rf"^(?:rule|checkpoint|localrule|localcheckpoint) {rule}:\n(.*?)(?:\n\n|\Z)", planned, re.M | re.S)
    assert m, f"rule {rule} not planned:\n{planned[-3000:]}"
    return m.group(1)


def test_slurm_profile_plans_the_chain_with_gpu_jobs_on_the_gpu_partition(tmp_path):
    _copy_pipeline(tmp_path)
    run = subprocess.run([*SNAKEMAKE, "--profile", "workflow/profiles/slurm", "-n", "results/report.html"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    planned = run.stdout + run.stderr  # Snakemake logs the plan to stderr
    train = _rule_block(planned, "train")
    assert "gpu=1" in train and "slurm_partition=YOUR_GPU_PARTITION" in train and "runtime=720" in train, train
    download = _rule_block(planned, "download")
    assert "gpu=" not in download and "slurm_partition=YOUR_CPU_PARTITION" in download, download


def test_kubernetes_profile_plans_the_chain_through_s3_storage(tmp_path):
    """The profile with its bucket pointed at a local S3 API (moto's server): Snakemake plans every job's files
    as objects in the bucket, and the GPU jobs with their GPU resources."""
    import boto3
    from moto.server import ThreadedMotoServer

    _copy_pipeline(tmp_path)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket="abdoseg-test")
        run = subprocess.run([*SNAKEMAKE, "--profile", "workflow/profiles/kubernetes", "-n", "results/report.html",
                              "--default-storage-prefix", "s3://abdoseg-test/abdoseg", "--storage-s3-endpoint-url", endpoint],
                             cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **creds})
    finally:
        server.stop()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    train = _rule_block(run.stdout + run.stderr, "train")
    assert "s3://abdoseg-test/abdoseg/results/model/best.pt" in train, train
    assert "gpu=1" in train and "gpu_manufacturer=nvidia" in train, train


def test_report_provenance_degrades_on_a_node_without_git_or_benchmarks(tmp_path):
    """The report rule's one read beyond its inputs: on a pod (no checkout, no benchmark files) it still works."""
    from abdoseg import provenance

    (tmp_path / "summary.json").write_text('{"liver": {"dice": 0.9}, "mean": {"dice": 0.9}}')
    (tmp_path / "real_ct.json").write_text('{"liver": {"dice": 0.8}}')
    got = provenance.collect({"train": {"lr": 0.001}}, "summary.json", "real_ct.json", tmp_path / "no_benchmarks",
                             cwd=tmp_path)
    assert got["git"] == {"commit": None, "dirty": None, "changed": []}
    assert got["steps"] == [] and got["metrics_diff"] == [] and got["params_changes"] == []
    assert got["machine"]["cpus"] >= 1
