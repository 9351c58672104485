"""Mutation check (issue #17): put known bugs into a copy of the repository, one at a time, and show that the tests
catch each of them.

    python bench/mutation_check.py            # the unit-level mutations (a few minutes on 2 cores)
    python bench/mutation_check.py --e2e      # also those only the end-to-end pipeline test can see (+4 min each)
    python bench/mutation_check.py --only dice_denominator

For each mutation: copy the tracked files to a temporary folder, replace one exact snippet of one file (the
snippet must occur exactly once, or the mutation no longer applies and the check says so), run the tests that
should notice with that copy's src/ first on PYTHONPATH (stopping at the first failure), and record whether
they fail. First, the same tests
run on the unmutated copy, which must pass: a failure there makes every "caught" meaningless. Prints a Markdown
table (docs/benchmarks.md, "Mutation check"). Nothing here is a test; it runs the tests.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str  # the bug, in words
    path: str  # file to change, relative to the repository
    old: str  # exact snippet, must occur once
    new: str
    tests: tuple[str, ...]  # pytest arguments: files, node IDs or -k expressions
    e2e: bool = False


MUTATIONS = [
    Mutation("swap_identity", "kidney swap table made the identity", "src/abdoseg/labels.py",
             "SWAP_LEFT_RIGHT: list[int] = [BACKGROUND, LIVER, KIDNEY_LEFT, KIDNEY_RIGHT, SPLEEN]",
             "SWAP_LEFT_RIGHT: list[int] = [BACKGROUND, LIVER, KIDNEY_RIGHT, KIDNEY_LEFT, SPLEEN]",
             ("tests/test_labels.py", "tests/test_augment.py")),
    Mutation("no_lps_flips", "LPS to RAS flips skipped (reorientation permutes axes only)", "src/abdoseg/preprocess.py",
             '    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))\n',
             '    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt("RAS"))\n'
             "    transform[:, 1] = 1.0\n",
             ("tests/test_preprocess.py", "tests/test_predict.py", "-k", "(ras_lps and not default) or exact or side")),
    Mutation("dicom_no_lps_to_ras", "DICOM's LPS coordinates taken as RAS", "src/abdoseg/dicom.py",
             "LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])", "LPS_TO_RAS = np.diag([1.0, 1.0, 1.0, 1.0])",
             ("tests/test_dicom.py", "tests/test_predict.py", "-k", "dicom or side")),
    Mutation("dice_denominator", "Dice denominator + 1", "src/abdoseg/metrics.py",
             "return 2.0 * int(np.logical_and(pred, ref).sum()) / (p + r)",
             "return 2.0 * int(np.logical_and(pred, ref).sum()) / (p + r + 1)",
             ("tests/test_metrics.py", "tests/test_evaluate.py", "-k", "by_hand or monai or missing")),
    Mutation("nsd_voxel_count", "NSD counts boundary voxels instead of weighting surface by area", "src/abdoseg/metrics.py",
             "spacing=[float(s) for s in spacing],\n                                   use_subvoxels=True)",
             "spacing=[float(s) for s in spacing],\n                                   use_subvoxels=False)",
             ("tests/test_metrics.py", "-k", "area or monai")),
    Mutation("hd95_misses_dropped", "summarize leaves missed organs out of hd95_mean", "src/abdoseg/evaluate.py",
             '"hd95_mean": float(d.hd95.where(~inf, d.fov_diagonal_mm).mean()),', '"hd95_mean": float(d.hd95.mean()),',
             ("tests/test_evaluate.py",)),
    Mutation("cli_scores_all_organs", "abdoseg evaluate scores all four organs whatever the labels annotate",
             "src/abdoseg/cli.py", "evaluate_case(case, pred, label, annotated[case], args.nsd_tolerance_mm)",
             "evaluate_case(case, pred, label, list(L.ORGANS.values()), args.nsd_tolerance_mm)",
             ("tests/test_predict.py", "-k", "annotated")),
    Mutation("invert_zeroes_last_slice", "inverse resampling zeroes the last slice of every prediction",
             "src/abdoseg/preprocess.py",
             "    return from_canonical(labels, np.asarray(geom.original_affine))",
             "    out = from_canonical(labels, np.asarray(geom.original_affine))\n    out[..., -1] = 0\n    return out",
             ("tests/test_preprocess.py", "-k", "exact or border")),
    Mutation("predict_mirrored", "predict's output mirrored left-right (no label swap)", "src/abdoseg/predict.py",
             "        return invert_probabilities(probs, geom)", "        return invert_probabilities(probs, geom)[::-1].copy()",
             ("tests/test_predict.py", "-k", "side")),
    Mutation("no_learning", "the optimiser never updates the weights (lr 0)", "src/abdoseg/train.py",
             'lr=float(tp["lr"]), weight_decay', "lr=0.0, weight_decay", ("tests/test_train.py", "-k", "learns")),
    Mutation("render_frame_short", "the video has one frame fewer than asked", "src/abdoseg/render.py",
             "for _ in tqdm(range(frames),", "for _ in tqdm(range(frames - 1),", ("tests/test_render.py",)),
    Mutation("e2e_predict_mirrored", "predict's output mirrored left-right, seen by the pipeline test alone",
             "src/abdoseg/predict.py", "        return invert_probabilities(probs, geom)",
             "        return invert_probabilities(probs, geom)[::-1].copy()",
             ("tests/test_e2e.py", "-k", "kidneys_are_on_their_sides"), e2e=True),
    # (the median in the mean column would be an equivalent mutant: the tiny pipeline has two test cases)
    Mutation("e2e_report_nsd_as_dice", "the report prints the mean NSD in the mean Dice column",
             "src/abdoseg/templates/report.html.j2", '<td>{{ "%.3f"|format(s.dice_mean) }}</td>',
             '<td>{{ "%.3f"|format(s.nsd_mean) }}</td>', ("tests/test_e2e.py", "-k", "report_numbers"), e2e=True),
]


def copy_repo(dest: Path) -> None:
    """The tracked files of the working tree (as they are now, edits included), without .git, data or results."""
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    for rel in filter(None, tracked.split("\0")):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def run_tests(root: Path, tests: tuple[str, ...]) -> tuple[int, list[str], float]:
    """(pytest's exit code, the failing test IDs, seconds) of `tests` in the copy at `root`."""
    env = {**os.environ, "PYTHONPATH": str(root / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
                           "--allow-skips", "-o", "addopts=", "-rfE", "-x", *tests], cwd=root, env=env, capture_output=True, text=True)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", done.stdout, re.M)))
    return done.returncode, failed, time.perf_counter() - start


def baseline_selections(chosen: list[Mutation]) -> list[tuple[str, ...]]:
    """Every test the mutations run, unmutated, in as few pytest runs as possible: the files run whole in one run,
    and each file that is only run with -k in one run with those expressions or-ed (one pipeline run for test_e2e)."""
    whole = {t for m in chosen if "-k" not in m.tests for t in m.tests}
    keyed: dict[str, list[str]] = {}
    for m in chosen:
        if "-k" in m.tests:
            files, expr = m.tests[:m.tests.index("-k")], m.tests[m.tests.index("-k") + 1]
            for f in files:
                if f not in whole:
                    keyed.setdefault(f, []).append(f"({expr})")
    runs = [tuple(sorted(whole))] if whole else []
    return runs + [(f, "-k", " or ".join(dict.fromkeys(exprs))) for f, exprs in sorted(keyed.items())]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--e2e", action="store_true", help="also the mutations only the end-to-end test sees")
    ap.add_argument("--only", nargs="*", default=[], help="mutation names to run (default: all)")
    args = ap.parse_args()
    chosen = [m for m in MUTATIONS if (not args.only or m.name in args.only) and (args.e2e or not m.e2e or m.name in args.only)]
    with tempfile.TemporaryDirectory(prefix="abdoseg-mutation-") as tmp:
        base = Path(tmp) / "base"
        copy_repo(base)
        for m in chosen:  # every mutation must still apply to the code as it is
            count = (base / m.path).read_text().count(m.old)
            if count != 1:
                sys.exit(f"mutation {m.name}: its snippet occurs {count} times in {m.path}; update bench/mutation_check.py")
        for selection in baseline_selections(chosen):
            rc, failed, secs = run_tests(base, selection)
            print(f"baseline (no mutation): {' '.join(selection)} -> exit {rc} in {secs:.0f} s", flush=True)
            if rc != 0:
                sys.exit(f"the tests fail without any mutation ({failed}): fix them first")
        rows = []
        for m in chosen:
            work = Path(tmp) / m.name
            shutil.copytree(base, work)
            target = work / m.path
            target.write_text(target.read_text().replace(m.old, m.new))
            rc, failed, secs = run_tests(work, m.tests)
            verdict = "caught" if rc == 1 else "NOT caught" if rc == 0 else f"error (pytest exit {rc})"
            rows.append(f"| {m.what} | `{m.path.removeprefix('src/abdoseg/')}` | `{' '.join(m.tests)}` | {verdict} | "
                        f"{', '.join(f.split('::')[-1] for f in failed) or '-'} | {secs:.0f} |")
            print(rows[-1], flush=True)
            shutil.rmtree(work)
    print("\n| mutation | file | tests run | result | failing tests | s |\n|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
