"""Fixtures shared by the whole suite."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

sys.path.insert(0, str(Path(__file__).parent))


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
