"""Continuous load in a thread, for the failover tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

from django_asyncredis import ConnectionInterrupted


class Load:
    """Runs ``step(i)`` for i = 1, 2, ... until the block ends, recording when each
    step succeeded and every ConnectionInterrupted (any other error ends the thread
    and fails the test through pytest's thread-exception hook)."""

    def __init__(self, step: Callable[[int], None]) -> None:
        self.step = step
        self.successes: list[float] = []
        self.errors: list[ConnectionInterrupted] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                self.step(i)
                self.successes.append(time.monotonic())
            except ConnectionInterrupted as exc:
                self.errors.append(exc)
                time.sleep(0.02)

    def first_success_after(self, moment: float, bound: float) -> float | None:
        """Wait (at most until ``moment + bound``) for a step that succeeded after ``moment``."""
        deadline = moment + bound
        while True:
            later = [t for t in self.successes if t > moment]
            if later or time.monotonic() >= deadline:
                return later[0] if later else None
            time.sleep(0.05)

    def __enter__(self) -> Load:
        self._thread.start()
        time.sleep(0.3)  # under way before anything breaks
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
