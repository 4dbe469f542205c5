"""Cinder's log lines in statecore's log, one line each.

Cinder's drivers log through Python's ``logging`` (oslo.log), statecore through loguru. Under
``statecore run`` nobody configures ``logging``, so Cinder's records would reach standard error
raw, tracebacks and all, once per failed attempt, across the live screen. Routed here, each is
one line of statecore's log at its level, its exception reduced to type and message: the
attempt's error is in the service list and the notifications already.
"""

from __future__ import annotations

import logging

from loguru import logger


class _ToLoguru(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            message = f"{message} ({type(error).__name__}: {error})"
        level = record.levelname if record.levelname in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"
        logger.log(level, "{}: {}", record.name, message.replace("\n", " "))


def route_cinder_logs(level: int = logging.INFO) -> None:
    """Cinder's loggers (``cinder.*``) write to statecore's log from now on; calling it again changes nothing."""
    cinder = logging.getLogger("cinder")
    if not any(isinstance(handler, _ToLoguru) for handler in cinder.handlers):
        cinder.addHandler(_ToLoguru())
    cinder.setLevel(level)
    cinder.propagate = False
