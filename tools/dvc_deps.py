"""Keep dvc.yaml's module deps equal to what each stage's scripts import: `python tools/dvc_deps.py` rewrites them.

A stage depends on every package module its rules' scripts import, directly or through other package modules
(imports inside functions count). tests/test_workflow.py fails when dvc.yaml and this computation disagree.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

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


def rule_scripts() -> dict[str, str | None]:
    """Rule name -> its script (workflow/scripts/...), parsed from workflow/rules/*.smk."""
    rules = {}
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for m in re.finditer(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), re.M):
            script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', m.group(2))
            rules[m.group(1)] = f"workflow/scripts/{script.group(1)}" if script else None
    return rules


def stage_modules() -> dict[str, list[str]]:
    """Stage name -> the sorted `src/abdoseg/*.py` deps it needs, from its --allowed-rules."""
    rules = rule_scripts()
    out = {}
    for name, stage in yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"].items():
        allowed = re.search(r"--allowed-rules (.*?) --", stage["cmd"]).group(1).split()
        scripts = [REPO / rules[r] for r in allowed if rules.get(r)]
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
