"""Who hears which alerts, through which channel: a regulator (生态环境、工信、应急) a region or kinds of
alert across all parks, a park operator its park, an enterprise its own devices.

A subscription's destination is checked when it is written (issue 20 item 1): the channel's own check
(scheme, a robot's official host, no refused address given literally; analytics/alerts/channels/
destinations.py) when the body is read, then - in :func:`create`, off the event loop - its host resolved,
refused if it resolves to a loopback, private or other non-public address the deployment does not allow.
It belongs to its ``owner``, the holder of the token that made it (issue 20 item 6)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from analytics.alerts.channels import CHANNELS, load
from analytics.alerts.channels.destinations import check_url, vet
from analytics.alerts.rules import SEVERITIES, Kind, Severity
from ingest.store import Store
from ingest.store import alert_outbox as outbox
from ingest.store.common import RecordError


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=128)]
    role: Literal["regulator", "operator", "enterprise"]
    region: str | None = None
    park: str | None = None
    enterprise: str | None = None
    kinds: list[Kind] = []
    systems: list[str] = []
    min_severity: Severity = "info"
    channel: str
    config: dict[str, Any]

    @model_validator(mode="after")
    def _scoped(self) -> Subscription:
        if self.role == "operator" and not self.park:
            raise ValueError("a park operator's subscription names its park")
        if self.role == "enterprise" and not (self.park and self.enterprise):
            raise ValueError("an enterprise's subscription names its park and enterprise")
        if self.channel not in CHANNELS:
            raise ValueError(f"channel {self.channel!r} unknown; known: {', '.join(sorted(CHANNELS))}")
        load(self.channel).check(self.config)
        return self


def check_destination(channel: str, config: dict[str, Any]) -> None:
    """The channel's check, then its host resolved now: RecordError (422) saying what is wrong."""
    try:
        load(channel).check(config)
        if isinstance(config.get("url"), str):
            vet(check_url(config["url"], channel).host, "url")
        elif isinstance(config.get("host"), str):
            vet(config["host"])
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def create(store: Store, sub: Subscription, actor: str, owner: str | None = None) -> dict[str, Any]:
    """Checked, stored and audited; returned as shown (secrets masked). ``owner``: who holds it (by default
    ``actor``)."""
    check_destination(sub.channel, sub.config)
    return outbox.create_subscription(
        store, name=sub.name, role=sub.role, region=sub.region, park=sub.park, enterprise=sub.enterprise,
        kinds=sub.kinds, systems=sub.systems, min_severity=sub.min_severity, channel=sub.channel, config=sub.config,
        actor=actor, owner=owner)


def get(store: Store, sid: int) -> dict[str, Any]:
    return outbox.subscription(store, sid)


def listing(store: Store, owner: str | None = None) -> list[dict[str, Any]]:
    """Every subscription (``owner`` None), or only that holder's."""
    return outbox.subscriptions(store, owner)


def remove(store: Store, sid: int, actor: str) -> None:
    """Refused while it has undelivered alerts."""
    outbox.remove_subscription(store, sid, actor)


def matches(sub: dict[str, Any], a: dict[str, Any]) -> bool:
    """Who hears what: a regulator its region (or every park, region unset), a park operator its park,
    an enterprise its own devices; then the kinds, systems and least severity it asked for."""
    if sub["region"] and sub["region"] != a.get("region"):
        return False
    if sub["park"] and sub["park"] != a["park"]:
        return False
    if sub["enterprise"] and sub["enterprise"] != a.get("enterprise"):
        return False
    kinds, systems = sub["kinds"], sub["systems"]  # empty: all
    return (not kinds or a["kind"] in kinds) and (not systems or a["system"] in systems) and \
        SEVERITIES.index(a["severity"]) >= SEVERITIES.index(sub["min_severity"])
