"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from loguru import logger

sys.path.insert(0, str(Path(__file__).parent))

from pg_server import postgres_bindir, postgres_server


class LoguruCapture:
    def __init__(self) -> None:
        self.messages: list[str] = []

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


@pytest.fixture
def caplog_loguru() -> Iterator[LoguruCapture]:
    """Loguru's records as text: statecore logs through loguru, not the logging module."""
    capture = LoguruCapture()
    handler = logger.add(
        lambda message: capture.messages.append(str(message)), level="DEBUG", format="{level} {message}"
    )
    yield capture
    logger.remove(handler)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI (``CI`` set, as .ci/run has it) a skip is a failure: CI installs everything every test
    needs, so a skip there means a check silently stopped running."""
    report: pytest.TestReport = yield
    if report.skipped and os.environ.get("CI") and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI, where nothing may skip: {reason}"
    return report


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL server for the module's tests (Debian's postgresql package)."""
    if postgres_bindir() is None:
        pytest.skip("needs Debian's postgresql package")
    with postgres_server() as url:
        yield url
