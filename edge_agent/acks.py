"""Which sent batches the platform has yet to confirm, and when to send them again (issue 21).

The broker's PUBACK says only that the broker holds a batch, in memory: mosquitto writes it to disk at its
next autosave, and a crash before then loses it. So a batch leaves the disk buffer when ingest says it is
committed (``wire.Ack`` on the gateway's ``…/ack`` topic). Until then it is *unconfirmed*, and sent again:

- on a new connection (the broker may be a restarted one that lost it): every unconfirmed batch that paho
  does not re-send by itself (it re-sends those the broker had not PUBACKed);
- when it was sent more than ``timeout_s`` ago and a batch sent after it has been confirmed: a hole (the path
  works and this one went missing, e.g. in a regional broker that crashed);
- as a probe, when nothing at all has been confirmed for a while: the oldest one only, the wait growing from
  ``timeout_s`` to PROBE_MAX_S, so an ingest away for hours costs a handful of repeats, not a flood.

At most ``max_unacked`` batches are out unconfirmed; newer ones wait on the gateway's own disk, not in the
broker's memory. Modes: ``e2e`` (a batch is deleted when confirmed), ``fallback`` (deleted on PUBACK and
counted: this buffer has never been confirmed anything and ``fallback_s`` passed with PUBACKs but no ack:
an older platform, or an ACL that hides the ack topic), ``off`` (configured). Any ack ends the fallback.
The publisher feeds it from paho's thread (PUBACKs, acks) and its pump; one lock guards it.
Decision record: docs/decisions/0010-end-to-end-ack.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from parkmon.common import wire

log = logging.getLogger(__name__)

PROBE_MAX_S = 600.0


@dataclass(slots=True)
class _Out:
    created_ms: int  # when the batch was written (its polls' time): the age health reports
    sent_at: float  # monotonic, the last send
    conn: int  # the connection it was last sent on
    pubacked: bool = False


class AckTracker:
    def __init__(self, setting: str, timeout_s: float, fallback_s: float, max_unacked: int,
                 confirmed_before: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.setting = setting  # auto | required | off
        self.mode = "off" if setting == "off" else "e2e"
        # only a buffer that has never been confirmed may decide the platform does not confirm
        self._may_fall_back = setting == "auto" and not confirmed_before
        self.timeout_s, self.fallback_s, self.max_unacked = timeout_s, fallback_s, max_unacked
        self._clock = clock
        self._lock = threading.Lock()
        self._out: dict[int, _Out] = {}  # seq -> state, in seq order (sends only ever add higher seqs)
        self._confirmed: list[int] = []  # to delete: confirmed by the platform
        self._pubacked: list[int] = []  # to delete: PUBACKed, in fallback / off
        now = clock()
        self._last_confirm = now  # the last ack (or the start)
        self._confirmed_sent_at = float("-inf")  # the latest send among confirmed batches
        self._waiting_since: float | None = None  # PUBACKs but no ack since then
        self._probe_s, self._probe_at = timeout_s, now + timeout_s
        self.confirmed = self.resent = self.refused = 0
        self._fallback_deleted = 0
        self._quiet_since: float | None = None  # logged: nothing confirmed for a minute (once, then once back)
        self._quiet_resent = 0

    # ---- paho's thread ------------------------------------------------------------------------------
    def puback(self, seq: int) -> None:
        with self._lock:
            o = self._out.get(seq)
            if o is None:
                return
            if self.mode != "e2e":
                del self._out[seq]
                self._pubacked.append(seq)
                self._fallback_deleted += 1
                return
            o.pubacked = True
            if self._waiting_since is None:
                self._waiting_since = self._clock()

    def confirm(self, ack: wire.Ack) -> None:
        with self._lock:
            now = self._clock()
            done = [s for s in self._out if ack.covers(s)]
            for s in done:
                self._confirmed_sent_at = max(self._confirmed_sent_at, self._out.pop(s).sent_at)
            self._confirmed += done
            self.confirmed += len(done)
            if self._quiet_since is not None:
                log.info("the platform confirms batches again after %.0f s without: %d batches sent again meanwhile",
                         now - self._quiet_since, self.resent - self._quiet_resent)
                self._quiet_since = None
            self._last_confirm, self._waiting_since = now, None
            self._probe_s, self._probe_at = self.timeout_s, now + self.timeout_s
            self._may_fall_back = False  # this platform confirms: never again trust a PUBACK alone
            if self.mode == "fallback":
                self.mode = "e2e"
                log.warning("the platform confirms batches again: back to deleting a batch only once it is "
                            "committed; %d batches were deleted on the broker's PUBACK alone meanwhile",
                            self._fallback_deleted)

    # ---- the pump -----------------------------------------------------------------------------------
    def sent(self, seq: int, created_ms: int, conn: int) -> None:
        with self._lock:
            o = self._out.get(seq)
            if o is None:
                self._out[seq] = _Out(created_ms, self._clock(), conn)
            else:
                o.sent_at, o.conn, o.pubacked = self._clock(), conn, False
                self.resent += 1

    def take(self) -> tuple[list[int], list[int]]:
        """Seqs to delete from the disk: (confirmed, PUBACKed in fallback / off)."""
        with self._lock:
            confirmed, self._confirmed = self._confirmed, []
            pubacked, self._pubacked = self._pubacked, []
            return confirmed, pubacked

    def give_back(self, confirmed: list[int], pubacked: list[int]) -> None:
        """The disk refused the delete: try again on a later turn."""
        with self._lock:
            self._confirmed[:0] = confirmed
            self._pubacked[:0] = pubacked

    def room(self) -> int | None:
        """New batches that may go out now (None: no limit)."""
        with self._lock:
            return max(0, self.max_unacked - len(self._out)) if self.mode == "e2e" else None

    def due(self, conn: int, held: set[int]) -> list[int]:
        """Unconfirmed batches to send again now, in seq order; ``held``: those paho will re-send itself."""
        with self._lock:
            now = self._clock()
            self._maybe_fall_back(now)
            if self.mode != "e2e" or not self._out:
                return []
            if self._quiet_since is None and now - self._last_confirm >= max(self.timeout_s, 60.0):
                self._quiet_since, self._quiet_resent = self._last_confirm, self.resent
                log.warning("the platform has confirmed nothing for %.0f s: %d batches sent wait for it on disk "
                            "(ingest away, or the path to it cut); the oldest is sent again now and then",
                            now - self._last_confirm, len(self._out))
            out: list[int] = []
            for seq, o in self._out.items():
                if seq in held:
                    o.conn = conn  # paho sends it on this connection
                elif o.conn != conn or (o.pubacked and now - o.sent_at >= self.timeout_s
                                        and self._confirmed_sent_at > o.sent_at):
                    out.append(seq)
            if not out and now >= self._probe_at and now - self._last_confirm >= self._probe_s:
                seq, o = next(iter(self._out.items()))
                if o.pubacked and now - o.sent_at >= self._probe_s:
                    out.append(seq)
                    self._probe_s = min(self._probe_s * 2, PROBE_MAX_S)
                    self._probe_at = now + self._probe_s
            return out

    def _maybe_fall_back(self, now: float) -> None:
        if not (self._may_fall_back and self.mode == "e2e" and self._waiting_since is not None
                and now - self._waiting_since >= self.fallback_s):
            return
        self.mode = "fallback"
        gone = [s for s, o in self._out.items() if o.pubacked]
        for s in gone:
            del self._out[s]
        self._pubacked += gone
        self._fallback_deleted += len(gone)
        log.warning("the platform has confirmed no batch in %.0f s of PUBACKs (an older platform, or an ACL that "
                    "keeps this gateway from reading its ack topic): deleting batches on the broker's PUBACK "
                    "alone, as before end-to-end acks, counted in health unconfirmed_deleted; a broker crash can "
                    "lose them", self.fallback_s)

    def forget(self, seqs: list[int]) -> None:
        """Batches no longer on disk (dropped for space): nothing left to confirm or re-send."""
        with self._lock:
            for s in seqs:
                self._out.pop(s, None)

    # ---- health -------------------------------------------------------------------------------------
    @property
    def unacked(self) -> int:
        with self._lock:
            return len(self._out)

    def oldest_created_ms(self) -> int | None:
        with self._lock:
            return next(iter(self._out.values())).created_ms if self._out else None

    @property
    def state(self) -> str:
        """ok | waiting (nothing confirmed for timeout_s while batches wait for it) | fallback | off."""
        with self._lock:
            if self.mode != "e2e":
                return self.mode
            waiting = self._out and self._clock() - self._last_confirm >= self.timeout_s
            return "waiting" if waiting else "ok"
