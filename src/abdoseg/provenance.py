"""Where a run came from, for the report: git commit, uncommitted changes, params against the committed ones,
the machine, wall time per step, and the metrics against the last committed run (what `dvc metrics diff` shows).

Everything here reads the working tree as it is; without git (a tarball) the git parts say so instead of failing.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import subprocess
from pathlib import Path

import yaml

# The pipeline's own outputs change in every run: they do not make a tree "dirty" for the report.
OUTPUT_PATHS = (":!results", ":!dvc.lock", ":!data")


def _git(*args: str, cwd: str | os.PathLike = ".") -> str | None:
    """Output of a git command, or None outside a repository (or without git)."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def git_state(cwd: str | os.PathLike = ".") -> dict:
    """Commit, whether the tree has uncommitted changes outside the pipeline's outputs, and which files."""
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit is None:
        return {"commit": None, "dirty": None, "changed": []}
    status = _git("status", "--porcelain", "--", ".", *OUTPUT_PATHS, cwd=cwd) or ""
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit.strip(), "dirty": bool(changed), "changed": changed}


def committed_text(path: str, cwd: str | os.PathLike = ".") -> str | None:
    """A file's content at HEAD, or None when it is not committed (or there is no repository)."""
    return _git("show", f"HEAD:{path}", cwd=cwd)


def _flatten(obj: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in obj.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(_flatten(value, name))
        else:
            out[name] = value
    return out


def params_changes(current: dict, committed: dict | None) -> list[dict]:
    """Params whose value differs from the committed params.yaml: [{param, committed, now}]."""
    if committed is None:
        return []
    now, before = _flatten(current), _flatten(committed)
    return [{"param": k, "committed": before.get(k), "now": now.get(k)}
            for k in sorted(set(now) | set(before)) if now.get(k) != before.get(k)]


def metrics_diff(current: dict, committed: dict | None,
                 keys: tuple[str, ...] = ("dice_mean", "dice", "nsd_mean", "nsd", "hd95_mean", "hd95")) -> list[dict]:
    """Per organ: the committed and current value and the change, for the flattened keys ending in `keys`."""
    if committed is None:
        return []
    now, before = _flatten(current), _flatten(committed)
    rows = []
    for name in now:
        if name.rsplit(".", 1)[-1] in keys and isinstance(now[name], (int, float)):
            old = before.get(name)
            change = now[name] - old if isinstance(old, (int, float)) else None
            rows.append({"metric": name, "committed": old, "now": now[name], "change": change})
    return rows


def machine() -> dict:
    """The machine that ran the report step: host, OS, Python, CPU count and the GPUs `nvidia-smi` lists."""
    info = {"host": platform.node(), "os": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count()}
    gpus = None
    if shutil.which("nvidia-smi"):
        gpus = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True)
    info["gpus"] = [g.strip() for g in gpus.stdout.splitlines() if g.strip()] if gpus and gpus.returncode == 0 else []
    return info


def step_times(benchmarks: str | os.PathLike) -> list[dict]:
    """Wall time per rule from Snakemake's benchmark files: jobs, total and longest seconds, peak memory (MB)."""
    rows: dict[str, dict] = {}
    for tsv in sorted(Path(benchmarks).rglob("*.tsv")):
        rel = tsv.relative_to(benchmarks)
        step = rel.parts[0].removesuffix(".tsv")
        with open(tsv, newline="") as fh:
            for rec in csv.DictReader(fh, delimiter="\t"):
                row = rows.setdefault(step, {"step": step, "jobs": 0, "seconds": 0.0, "longest": 0.0, "max_rss_mb": 0.0})
                s = float(rec["s"])
                row["jobs"] += 1
                row["seconds"] += s
                row["longest"] = max(row["longest"], s)
                rss = rec.get("max_rss", "-")
                row["max_rss_mb"] = max(row["max_rss_mb"], float(rss) if rss not in ("-", "NA", "") else 0.0)
    return list(rows.values())


def collect(params: dict, summary_path: str, real_ct_path: str | None, benchmarks: str | os.PathLike,
            cwd: str | os.PathLike = ".") -> dict:
    """Everything the report's provenance and comparison sections show."""
    committed_params = committed_text("params.yaml", cwd)
    diff_rows = []
    for path in (summary_path, real_ct_path):
        if path is None:
            continue
        before = committed_text(str(path), cwd)
        current = json.loads(Path(cwd, path).read_text())
        for row in metrics_diff(current, json.loads(before) if before else None):
            diff_rows.append({"file": Path(path).name, **row})
    return {
        "git": git_state(cwd),
        "params_changes": params_changes(params, yaml.safe_load(committed_params) if committed_params else None),
        "metrics_diff": diff_rows,
        "machine": machine(),
        "steps": step_times(benchmarks),
    }
