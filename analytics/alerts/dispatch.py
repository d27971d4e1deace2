"""Delivery from the outbox: at least once, with the idempotency key, retried with back-off, across
restarts.

A due row (not delivered, ``next_try_ms`` passed) is first leased - ``next_try_ms`` moved ``lease_s`` ahead
in its own short transaction - then sent, then marked delivered. A dispatcher killed after sending and
before marking sends it again once the lease runs out: the receiver sees the same idempotency key twice
and keeps one. A failed send is tried again after 1, 2, 4 … seconds, at most ``max_backoff_s`` apart,
so a receiver that was down gets everything soon after it is back. Each subscription's rows go out in
order (an older undelivered row holds the newer ones back): a resolve never overtakes its firing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, and_, select, update

from analytics.alerts.channels import Channel, DeliveryError, load
from ingest.store import record_tables as t

log = logging.getLogger("parkmon.alerts")


class Dispatcher:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time, lease_s: float = 30.0,
                 max_backoff_s: float = 60.0, batch: int = 100) -> None:
        self.engine = engine
        self.clock = clock
        self.lease_ms = int(lease_s * 1000)
        self.max_backoff_ms = int(max_backoff_s * 1000)
        self.batch = batch
        self._channels: dict[str, Channel] = {}
        self._wake = threading.Event()
        self.delivered = 0
        self.failed_attempts = 0

    def wake(self) -> None:
        """Something was committed to the outbox: deliver now instead of at the next poll."""
        self._wake.set()

    def _channel(self, name: str) -> Channel:
        if name not in self._channels:
            self._channels[name] = load(name)
        return self._channels[name]

    def run_once(self) -> int:
        """Deliver what is due; returns how many were delivered."""
        now = int(self.clock() * 1000)
        ob, subs = t.alert_outbox, t.alert_subscriptions
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(ob.c.id, ob.c.subscription_id, ob.c.channel, ob.c.payload, ob.c.attempts, ob.c.next_try_ms)
                .where(ob.c.delivered_ms.is_(None)).order_by(ob.c.id).limit(self.batch * 10)).all()
            due, held = [], set()
            for r in rows:  # per subscription, in order: the first not yet due holds the rest back
                if r.subscription_id in held:
                    continue
                if r.next_try_ms > now:
                    held.add(r.subscription_id)
                    continue
                due.append(r)
                held.add(r.subscription_id)  # one in flight per subscription and round
                if len(due) >= self.batch:
                    break
            if not due:
                return 0
            conn.execute(update(ob).where(ob.c.id.in_([r.id for r in due]), ob.c.next_try_ms <= now)
                         .values(next_try_ms=now + self.lease_ms))
            configs = {s.id: json.loads(s.config) for s in conn.execute(
                select(subs.c.id, subs.c.config).where(subs.c.id.in_({r.subscription_id for r in due})))}
        sent = 0
        for r in due:
            err = self._send(r.channel, json.loads(r.payload), configs.get(r.subscription_id))
            with self.engine.begin() as conn:
                if err is None:
                    conn.execute(update(ob).where(and_(ob.c.id == r.id, ob.c.delivered_ms.is_(None))).values(
                        delivered_ms=int(self.clock() * 1000), attempts=r.attempts + 1, last_error=None))
                    sent += 1
                else:
                    backoff = min(self.max_backoff_ms, 1000 * 2 ** min(r.attempts, 20))
                    conn.execute(update(ob).where(ob.c.id == r.id).values(
                        attempts=r.attempts + 1, last_error=err[:500], next_try_ms=int(self.clock() * 1000) + backoff))
                    self.failed_attempts += 1
                    log.warning("alert delivery %s via %s failed (attempt %d, next in %.0f s): %s",
                                r.id, r.channel, r.attempts + 1, backoff / 1000, err)
        self.delivered += sent
        return sent

    def _send(self, channel: str, message: dict[str, Any], config: dict[str, Any] | None) -> str | None:
        if config is None:
            return "the subscription was deleted"
        try:
            self._channel(channel).send(message, config)
            return None
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a channel's bug must not stop delivery to the others
            log.exception("alert channel %s failed", channel)
            return f"{type(exc).__name__}: {exc}"

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:  # the database may be away: keep trying, the outbox keeps everything
                log.exception("alert dispatch round failed")
                busy = 0
            if not busy:
                self._wake.wait(poll_s)
                self._wake.clear()
