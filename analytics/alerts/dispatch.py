"""Delivery from the outbox: at least once, with the idempotency key, retried with back-off, across
restarts.

A due row (not delivered, ``next_try_ms`` passed) is first leased - ``next_try_ms`` moved ``lease_s`` ahead
in its own short transaction - then sent, then marked delivered. A dispatcher killed after sending and
before marking sends it again once the lease runs out: the receiver sees the same idempotency key twice
and keeps one. The key is the row's own (random, made when the row was queued:
ingest.store.alert_outbox.new_key), so it never changes between attempts and is never another
deployment's or another database's. A failed send is tried again after 1, 2, 4 … seconds, at most
``max_backoff_s`` apart, so a receiver that was down gets everything soon after it is back. Each
subscription's rows go out in order (an older undelivered row holds the newer ones back): a resolve
never overtakes its firing.

Secrets (issue 20 item 4): a channel's error names the receiver's host, a status and a fixed reason, never
its answer nor its URL's path or query; a subscription's secrets (its URL's tokens, its HMAC secret, its SMTP
or MQTT password) are registered with the log masking (parkmon.common.secrecy) before its first send, and
the error is masked again before it is stored (ingest.store.alert_outbox.failed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from analytics.alerts.channels import Channel, DeliveryError, load
from ingest.store import Store
from ingest.store import alert_outbox as outbox
from parkmon.common.outage import Outage
from parkmon.common.secrecy import add_secrets, endpoint_secrets

log = logging.getLogger("parkmon.alerts")


class Dispatcher:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time, lease_s: float = 30.0,
                 max_backoff_s: float = 60.0, batch: int = 100) -> None:
        self.store = store
        self.clock = clock
        self.lease_ms = int(lease_s * 1000)
        self.max_backoff_ms = int(max_backoff_s * 1000)
        self.batch = batch
        self._channels: dict[str, Channel] = {}
        self._masked: set[int] = set()  # subscriptions whose secrets the log masking knows
        self._wake = threading.Event()
        self._outage = Outage(log, "alert dispatch")  # a database outage: two log lines, not one a second
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
        due = outbox.claim(self.store, int(self.clock() * 1000), self.lease_ms, self.batch)
        sent = 0
        for r in due:
            if r.config is not None and r.subscription_id not in self._masked:
                self._mask(r.config)
                self._masked.add(r.subscription_id)
            err = self._send(r.channel, r.message, r.config)
            if err is None:
                outbox.delivered(self.store, r.id, r.attempts + 1, int(self.clock() * 1000))
                sent += 1
            else:
                backoff = min(self.max_backoff_ms, 1000 * 2 ** min(r.attempts, 20))
                outbox.failed(self.store, r.id, r.attempts + 1, err, int(self.clock() * 1000) + backoff)
                self.failed_attempts += 1
                log.warning("alert delivery %s via %s failed (attempt %d, next in %.0f s): %s",
                            r.id, r.channel, r.attempts + 1, backoff / 1000, err)
        self.delivered += sent
        return sent

    @staticmethod
    def _mask(config: dict[str, Any]) -> None:
        urls = [v for v in config.values() if isinstance(v, str) and "://" in v]
        add_secrets([str(config[k]) for k in ("secret", "password") if config.get(k)]
                    + [v for u in urls for v in endpoint_secrets(u)])

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
            return f"internal error ({type(exc).__name__}); the platform's log has the details"

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception as exc:  # the database may be away: keep trying, the outbox keeps everything
                self._outage.failed(exc)
                busy = 0
            else:
                self._outage.ok()
            if not busy:
                self._wake.wait(poll_s)
                self._wake.clear()
