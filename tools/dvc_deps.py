"""Keep dvc.yaml's module deps equal to what each stage's scripts import: `python tools/dvc_deps.py` rewrites them.

A stage depends on every package module its rules' scripts import, directly or through other package modules
(imports inside functions count). tests/test_workflow.py fails when dvc.yaml and this computation disagree.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from typing import NamedTuple

import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "abdoseg"


def package_imports(path: Path) -> set[str]:
    """abdoseg modules a file imports (at the top or inside a function), by name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("abdoseg"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("abdoseg.")}
    return {m for m in found if (PACKAGE / f"{m}.py").exists()}


def module_closure(scripts: list[Path]) -> set[str]:
    """Every package module the scripts import, directly or through other package modules."""
    todo = set().union(*(package_imports(s) for s in scripts))
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo |= package_imports(PACKAGE / f"{module}.py")
    return seen


class Rule(NamedTuple):
    """One rule (or checkpoint) of workflow/rules/*.smk, as the repository's text states it."""

    file: str  # workflow/rules/NAME.smk, relative to the repository
    script: str | None  # workflow/scripts/NAME.py, or None for a rule without a script
    body: str  # the indented lines under `rule NAME:` (input, output, resources, ...)


def rules() -> dict[str, Rule]:
    """Rule name -> its file, script and body, parsed from workflow/rules/*.smk (the one parser: the tests use it too)."""
    found = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for m in re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', m.group(2))
            found[m.group(1)] = Rule(f"workflow/rules/{smk.name}", f"workflow/scripts/{script.group(1)}" if script else None,
                                     m.group(2))
    return found


def allowed_rules(stage: dict) -> list[str]:
    """The rules a dvc.yaml stage lets Snakemake run (its command's --allowed-rules)."""
    return re.search(r"--allowed-rules (.*?) --", stage["cmd"]).group(1).split()


def stage_modules() -> dict[str, list[str]]:
    """Stage name -> the sorted `src/abdoseg/*.py` deps it needs, from its --allowed-rules."""
    by_name = rules()
    out = {}
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        scripts = [REPO / by_name[r].script for r in allowed_rules(stage) if r in by_name and by_name[r].script]
        out[name] = sorted(f"src/abdoseg/{m}.py" for m in module_closure(scripts))
    return out


def rewrite() -> None:
    """Replace each stage's `src/abdoseg/*.py` deps in dvc.yaml by the computed list, keeping everything else."""
    text = (REPO / "dvc.yaml").read_text()
    needed = stage_modules()
    out, stage = [], None
    for line in text.splitlines():
        m = re.match(r"^  (\w+):$", line)
        if m:
            stage = m.group(1)
        if re.match(r"^      - src/abdoseg/\w+\.py$", line):
            if stage in needed:
                out.extend(f"      - {d}" for d in needed.pop(stage))
            continue
        out.append(line)
    if any(needed.values()):
        sys.exit(f"stages without any src/abdoseg deps to replace: {sorted(k for k, v in needed.items() if v)}")
    (REPO / "dvc.yaml").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    rewrite()
