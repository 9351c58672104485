"""The workflow's wiring: params validated at start, and dvc.yaml in step with the Snakefile's rules."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
from dvc_deps import allowed_rules, rules, stage_modules  # tools/ is not a package: on the path above

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def test_every_rule_belongs_to_exactly_one_dvc_stage():
    by_name = rules()
    assert {"download", "preprocess", "split", "train", "predict", "evaluate", "summarize", "render", "report"} <= set(by_name)
    owner: dict[str, str] = {}
    for name, stage in _stages().items():
        for rule in allowed_rules(stage):
            assert rule in by_name, f"stage {name} allows unknown rule {rule}"
            assert rule not in owner, f"rule {rule} is in stages {owner.get(rule)} and {name}"
            owner[rule] = name
            deps = stage.get("deps", [])
            assert by_name[rule].file in deps, f"stage {name} does not depend on {by_name[rule].file}"
            if by_name[rule].script:
                assert by_name[rule].script in deps, f"stage {name} does not depend on {by_name[rule].script}"
    assert set(owner) == set(by_name) - {"all"}, set(by_name) - {"all"} - set(owner)


def test_each_stage_depends_on_every_module_its_rules_import():
    """A change to a module that a stage's scripts import must rerun that stage: dvc.yaml lists exactly those modules
    (`python tools/dvc_deps.py` rewrites the lists)."""
    for name, needed in stage_modules().items():
        listed = {d for d in _stages()[name]["deps"] if d.startswith("src/abdoseg/") and d.endswith(".py")}
        assert not set(needed) - listed, f"stage {name} misses deps: " + ", ".join(sorted(set(needed) - listed))
        assert not listed - set(needed), f"stage {name} lists modules its rules never import: " + ", ".join(sorted(listed - set(needed)))


def test_stage_params_are_params_sections():
    sections = set(yaml.safe_load((REPO / "params.yaml").read_text()))
    used = set()
    for stage in _stages().values():
        used |= set(stage.get("params", []))
    assert used <= sections
    assert sections - used == set(), f"params sections no stage tracks: {sections - used}"


def test_no_snakemake_state_is_a_dvc_output():
    for stage in _stages().values():
        for out in stage.get("outs", []):
            assert not str(out).startswith(".snakemake")


def _copy_pipeline(dest: Path) -> None:
    """The files Snakemake needs to plan the chain, copied to `dest`."""
    for item in ("Snakefile", "params.yaml", "workflow"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dest / item)


def test_bad_params_stop_the_run_with_a_clear_error(tmp_path):
    _copy_pipeline(tmp_path)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["train"]["batch_size"] = 0
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode != 0
    assert "batch_size" in run.stdout + run.stderr and "minimum" in run.stdout + run.stderr


def test_dry_run_plans_the_chain(tmp_path):
    _copy_pipeline(tmp_path)
    run = subprocess.run([*SNAKEMAKE, "-n", "--cores", "1"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "download" in run.stdout
    assert Path(tmp_path / "data").exists() is False  # a dry run writes nothing


def test_local_gpu_profile_plans_the_chain(tmp_path):
    _copy_pipeline(tmp_path)
    run = subprocess.run([*SNAKEMAKE, "--profile", "workflow/profiles/local-gpu", "-n"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "download" in run.stdout


def test_percentile_normalisation_runs_through_the_data_step(tmp_path):
    """normalize: percentile adds the intensity rule: statistics from the training cases, then z-scored arrays."""
    _copy_pipeline(tmp_path)
    params = yaml.safe_load((REPO / "tests" / "tiny_params.yaml").read_text())
    params["preprocess"].update(normalize="percentile", percentiles=[0.5, 99.5])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    run = subprocess.run([*SNAKEMAKE, "--cores", "2", "data"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    split = json.loads((tmp_path / "data" / "splits.json").read_text())
    stats = json.loads((tmp_path / "data" / "processed" / "intensity.json").read_text())
    assert stats["n_cases"] == len(split["train"])
    image = np.load(tmp_path / "data" / "processed" / "images" / f"{split['val'][0]}.npy")
    assert image.min() == pytest.approx((stats["clip"][0] - stats["mean"]) / stats["sd"], rel=1e-4)
    assert image.max() == pytest.approx((stats["clip"][1] - stats["mean"]) / stats["sd"], rel=1e-4)


def test_a_real_dataset_layout_runs_through_the_data_step(tmp_path):
    """data.source flare22 (its zip layout and IDs, served on 127.0.0.1), official URL overridden: download,
    split and resample run under Snakemake, and the manifest records the source's provenance."""
    from http_server import FileServer
    from test_datasets import _layout, _zip

    _copy_pipeline(tmp_path)
    files, expected = _layout("flare22", n=5)
    with FileServer({"/FLARE22Train.zip": _zip(files)}) as server:
        params = yaml.safe_load((REPO / "tests" / "tiny_params.yaml").read_text())
        params["data"] = {"source": "flare22", "url": server.url("/FLARE22Train.zip"), "max_cases": 4}
        params["preprocess"]["spacing"] = [12.0, 12.0, 12.0]
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        run = subprocess.run([*SNAKEMAKE, "--cores", "2", "data"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = (tmp_path / "data" / "raw" / "manifest.tsv").read_text()
    assert manifest.count("flare22") == 4 and "FLARE22_Tr_0005" not in manifest
    split = json.loads((tmp_path / "data" / "splits.json").read_text())
    for case in split["train"] + split["val"]:
        assert (tmp_path / "data" / "processed" / "images" / f"{case}.npy").exists()
