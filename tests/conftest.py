"""Shared fixtures (the repository root, the real CT bundled with the package), and the no-silent-skips rule.

No silent skips (issue #17): a skipped test fails the run unless its skip reason says it needs a GPU
(`pytest.skip("needs a GPU: ...")`). Every fixture a test needs lives in the repository, so nothing else may skip.
`pytest --allow-skips` lifts the rule for a local run; CI and `make test` never pass it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_SKIPPED: list[tuple[str, str]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--allow-skips", action="store_true", help="do not fail the run for skips without a GPU reason")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(getattr(report, "wasxfail", report.longrepr))
        _SKIPPED.append((report.nodeid, reason))


def _silent_skips() -> list[tuple[str, str]]:
    return [(node, reason) for node, reason in _SKIPPED if "gpu" not in reason.lower()]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _silent_skips() and not session.config.getoption("--allow-skips") and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if _silent_skips() and not config.getoption("--allow-skips"):
        terminalreporter.section("skipped without a GPU reason: the run fails (issue #17; --allow-skips to lift)", red=True)
        for node, reason in _silent_skips():
            terminalreporter.line(f"{node}: {reason}")


@pytest.fixture(scope="session")
def real_ct():
    """(image, labels mapped to our table, affine) of the bundled real CT."""
    from abdoseg import real_ct as R

    scan = R.load()
    return scan.image, scan.labels, scan.affine


@pytest.fixture(scope="session")
def synth_cfg():
    from abdoseg.synthetic import SyntheticConfig

    return SyntheticConfig()
