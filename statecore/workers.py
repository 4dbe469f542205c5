"""A few daemon threads that run driver calls nobody waits for.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter
exits, so one driver call that never returns would keep a supervisor from
exiting; these threads are daemons, like the attempt threads. A call that hangs
holds one worker, and the others go on with the queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from loguru import logger

Call = tuple[Callable[..., None], tuple[Any, ...]] | None


class DaemonWorkers:
    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size
        self._queue: queue.SimpleQueue[Call] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, func: Callable[..., None], *args: Any) -> None:
        """Queue ``func(*args)``; a worker is started for it while there are fewer than ``size``."""
        self._queue.put((func, args))
        with self._lock:
            if len(self._threads) < self.size:
                thread = threading.Thread(target=self._run, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def stop(self) -> None:
        """Let idle workers end; one stuck in a call ends with the process (it is a daemon)."""
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)

    def _run(self) -> None:
        while (call := self._queue.get()) is not None:
            func, args = call
            try:
                func(*args)
            except Exception as error:  # one failing call must not end the worker
                logger.warning("{}: {} failed ({})", self.name, getattr(func, "__name__", func), error)
