"""Which points the live rules watch, per enterprise, as the alert engine's live path asks for every batch.

An enterprise's points are read in one query at its first batch, when a key appears that is neither known nor
already looked for (registered since), and again at most every ``RELOAD_S`` while its data flows: a point's
catalogue (its metric, hence its rules) may be stored after its first data - another worker of the shared group
took the meta - and it must not stay unwatched. Set operations per batch, not a lookup per sample: most samples
have no rule, and this runs for every one (0.53 -> 0.23 us of CPU a row, bench/ingest_pg.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from analytics.alerts.actions import Subject
from analytics.alerts.rules import Rule
from ingest.store import Store
from ingest.store import alerts as rows
from parkmon.common.metrics import METRICS

RELOAD_S = 60.0  # an enterprise's points are read again at most this often while its data flows
LIVE_KINDS = ("threshold", "rate", "quality")  # the rules judged on each sample


@dataclass(frozen=True)
class PointCtx:
    subject: Subject
    rules: tuple[Rule, ...]


@dataclass
class _Enterprise:
    loaded_s: float = 0.0  # when its points were read (the engine's clock)
    known: set[str] = field(default_factory=set)  # registered keys, as last read
    missing: set[str] = field(default_factory=set)  # keys seen in batches, not registered when last read
    rules: dict[str, PointCtx] = field(default_factory=dict)  # the keys some rule watches


class WatchedPoints:
    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self.store, self.clock = store, clock
        self._ents: dict[tuple[str, str], _Enterprise] = {}

    def clear(self) -> None:
        """The rules changed: every enterprise is read again at its next batch."""
        self._ents.clear()

    def of(self, park: str, ent: str, keys: set[str], rules: Sequence[Rule],
           parks: dict[str, tuple[str, str]]) -> dict[str, PointCtx]:
        """The points of ``keys`` (one batch's) that ``rules`` watch; ``parks``: park -> (name_zh, region)."""
        w = self._ents.get((park, ent))
        if w is None or self.clock() - w.loaded_s >= RELOAD_S or (
                not keys <= w.known and not keys - w.known <= w.missing):
            w = self._load(park, ent, rules, parks)
            w.missing |= keys - w.known  # not a registered point (yet): asked again after the next load
        return w.rules

    def _load(self, park: str, ent: str, rules: Sequence[Rule], parks: dict[str, tuple[str, str]]) -> _Enterprise:
        name_zh, region = parks.get(park, (park, ""))
        old = self._ents.get((park, ent))
        w = _Enterprise(loaded_s=self.clock(), missing=old.missing if old else set())
        for p in rows.watched_points(self.store, park, ent):
            w.known.add(p.key)
            on = tuple(r for r in rules if r.kind in LIVE_KINDS
                       and r.applies(park, ent, p.device, p.device_kind or "", p.metric))
            if on:
                m = METRICS.get(p.metric or "")
                subj = Subject(f"{park}/{ent}/{p.key}", park, ent, p.device, p.metric,
                               p.unit or (m.unit if m else ""), m.zh if m else p.key, name_zh, region)
                w.rules[p.key] = PointCtx(subj, on)
        w.missing -= w.known
        self._ents[(park, ent)] = w
        return w
