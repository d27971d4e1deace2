"""Alerting as one piece the platform runs beside ingest: the engine on ingest's commits, its timer
(silence, escalation, hourly pollutant averages, indicators) and the outbox dispatcher."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from analytics.alerts.dispatch import Dispatcher
from analytics.alerts.engine import AlertEngine, as_listener
from analytics.alerts.rules import Rule, load_rules
from ingest.mqtt.consumer import Ingestor
from ingest.store import Store


class AlertService:
    def __init__(self, store: Store, rules: Sequence[Rule] | None = None, tick_s: float = 5.0,
                 dispatch: bool = True) -> None:
        self.engine = AlertEngine(store, list(rules) if rules is not None else load_rules())
        self.dispatcher = Dispatcher(store) if dispatch else None
        if self.dispatcher is not None:
            self.engine.notify = self.dispatcher.wake
        self.tick_s = tick_s
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def attach(self, ingestor: Ingestor) -> None:
        ingestor.commit_listeners.append(as_listener(self.engine))

    def start(self) -> None:
        self.engine.start()
        self._threads = [threading.Thread(target=self.engine.run, args=(self._stop, self.tick_s),
                                          name="alerts-timer", daemon=True)]
        if self.dispatcher is not None:
            self._threads.append(threading.Thread(target=self.dispatcher.run, args=(self._stop,),
                                                  name="alerts-dispatch", daemon=True))
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        if self.dispatcher is not None:
            self.dispatcher.wake()
        for t in self._threads:
            t.join(10)
        self.engine.stop()
