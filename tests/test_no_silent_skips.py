"""The no-silent-skips rule of conftest.py (issue #17): a skip fails the run unless its reason names a GPU."""

import shutil
import subprocess
import sys

from conftest import REPO


def _run(tmp_path, body: str, *args: str) -> int:
    shutil.copy(REPO / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_it.py").write_text("import pytest\n\n\ndef test_ok():\n    pass\n\n\n" + body)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                          capture_output=True, text=True).returncode


GPU_SKIP = "def test_cuda():\n    pytest.skip('needs a GPU: no CUDA device here')\n"
SILENT_SKIP = "def test_data():\n    pytest.skip('fixture folder missing')\n"


def test_only_gpu_skips_pass(tmp_path):
    assert _run(tmp_path, GPU_SKIP) == 0
    assert _run(tmp_path, SILENT_SKIP) == 1
    assert _run(tmp_path, SILENT_SKIP, "--allow-skips") == 0


def test_a_silent_skip_fails_a_parallel_run_too(tmp_path):
    """`make test` runs the suite on pytest-xdist workers: the skips reach the rule from every worker."""
    assert _run(tmp_path, SILENT_SKIP, "-n", "2") == 1
    assert _run(tmp_path, GPU_SKIP, "-n", "2") == 0
