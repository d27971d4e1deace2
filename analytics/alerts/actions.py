"""What is done to an alert - fired, acknowledged, closed by hand - and what its events say and who hears
them (:data:`ANNOUNCER`). The rows are the storage layer's (ingest.store.alerts): each change is written
there in one transaction with its event and its outbox rows (docs/decisions/0008-alert-outbox.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analytics.alerts.messages import render
from analytics.alerts.rules import Rule
from analytics.alerts.subscriptions import matches
from ingest.store import Store
from ingest.store import alerts as rows
from ingest.store.alerts import NewAlert


@dataclass(frozen=True)
class Subject:
    """Where an alert is: the keys, and the words a message needs."""

    key: str
    park: str
    enterprise: str | None = None
    device: str | None = None
    metric: str | None = None
    unit: str = ""
    label_zh: str = ""
    park_name: str = ""
    region: str = ""


class _Announcer:
    """The alerts' words (analytics.alerts.messages) and who hears them (analytics.alerts.subscriptions)."""

    def message(self, alert: dict[str, Any], event: str, at_ms: int) -> dict[str, str]:
        return render(alert, "resolved" if event == "manual_resolve" else event, at_ms)

    def hears(self, subscription: dict[str, Any], alert: dict[str, Any]) -> bool:
        return matches(subscription, alert)


ANNOUNCER = _Announcer()


def new_alert(rule: Rule, subj: Subject, at_ms: int, since_ms: int, value: float | None, peak: float | None,
              threshold: float | None = None) -> NewAlert:
    """The alert a rule's firing on ``subj`` writes; ``threshold`` when it is not the rule's own (a permit
    limit, a target)."""
    detail = {"name_zh": rule.name_zh, "name_en": rule.name_en, "op": rule.op, "source": rule.source,
              "label_zh": subj.label_zh, "park_name": subj.park_name, "region": subj.region}
    return NewAlert(rule.id, subj.key, subj.park, subj.enterprise, subj.device, subj.metric, rule.kind, rule.system,
                    rule.severity, since_ms, at_ms, value, peak,
                    rule.threshold if threshold is None else threshold, subj.unit, detail)


def fire(store: Store, rule: Rule, subj: Subject, at_ms: int, since_ms: int, value: float | None,
         peak: float | None, threshold: float | None = None) -> int:
    """A new firing alert, committed with its event and outbox rows; returns its id."""
    with rows.writing(store, ANNOUNCER) as w:
        return w.fire(new_alert(rule, subj, at_ms, since_ms, value, peak, threshold))


def acknowledge(store: Store, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
    """Someone is on it: escalation stops; audited, not delivered."""
    with rows.writing(store, ANNOUNCER) as w:
        return w.acknowledge(alert_id, actor, note)


def close(store: Store, alert_id: int, actor: str, note: str = "") -> dict[str, Any]:
    """A person closes a firing alert; audited, and subscribers hear it like any resolve."""
    with rows.writing(store, ANNOUNCER) as w:
        return w.close(alert_id, actor, note)
