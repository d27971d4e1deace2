"""Say an outage once when it starts and once when it ends, with counts, instead of once a retry.

A loop that retries every second (the alert engine, the alert dispatcher) would otherwise write an ERROR
with a traceback every second while its database is away: 60 lines for a one-minute outage, which bury
the one that matters. :class:`Outage` logs the first failure with its traceback, counts the rest (a
different error is logged once too: it may be a new cause), and logs the recovery with how long it
lasted and how many attempts failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Outage:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what  # e.g. "alert evaluation": the log lines name the loop
        self.failures = 0  # attempts failed in the current outage
        self.total_failures = 0  # ever: for health figures
        self._since = 0.0
        self._seen: set[str] = set()

    @property
    def down(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        """One attempt failed with ``exc``; call from an ``except`` block (the first is logged with its traceback)."""
        self.total_failures += 1
        kind = f"{type(exc).__name__}: {exc}"[:300]
        if self.failures == 0:
            self._since = time.monotonic()
            self._seen = {kind}
            self.log.exception("%s failing: %s (retrying; logged again when it works)", self.what, kind)
        elif kind not in self._seen and len(self._seen) < 5:
            self._seen.add(kind)
            self.log.error("%s still failing, now: %s", self.what, kind)
        self.failures += 1

    def ok(self) -> None:
        """An attempt worked: ends the outage, if there was one, with one line."""
        if self.failures:
            self.log.warning("%s works again after %.0f s; %d attempts failed meanwhile", self.what,
                             time.monotonic() - self._since, self.failures)
            self.failures = 0

    def attempt(self, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None when it raised: a loop's body that must not end the loop."""
        try:
            out = fn()
        except Exception as exc:
            self.failed(exc)
            return None
        self.ok()
        return out
