"""Who may do what on the broker: the accounts ``parkmon ingest mqtt-auth`` creates and mosquitto's ACL text.

Two kinds of account, on different listeners (ingest/mqtt/auth.py ``conf_text``):

- *device side* (gateways, a park's gate system, park bridges, ``--reader`` accounts): they log in on the
  device listener, where mosquitto replaces the client id by the login (``use_username_as_clientid``), so
  a device can only ever hold the session named after its own login: gateway A cannot kick gateway B, nor
  publish B's will, nor take ingest's session. Their names never start with a prefix kept for the platform's
  own client ids (``RESERVED_PREFIXES``, the service accounts' names), so no forced id equals a service's.
- *services* (ingest, the alert sender): they log in on the service listeners only (loopback, or TLS inside
  the platform's network), from a password file that holds no device account, and choose their client ids
  (several ingest workers share one login and a shared subscription, each with its own stable session:
  ``parkmon-ingest-1``, ``parkmon-ingest-2``, ...; keep them starting with ``parkmon-``).

mosquitto 2.0.11's ``acl_file`` never refuses a SUBSCRIBE (src/security_default.c answers success for
every subscription: "FIXME - implement ACL subscription strings"); it checks ``read`` on each message as it
is delivered. A subscription to a topic an account may not read therefore gets nothing, but a member of a
*shared* group that may not read still takes its turn: mosquitto hands the message to it, drops it, and no
other member gets it. So ingest's group name is a secret (``ingest.env``: ``PARKMON_INGEST_GROUP``), made
by ``mqtt-auth`` like a password and never given to a device: a device cannot join a group it cannot name.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ingest.mqtt.passwords import AuthError
from parkmon.common import wire

Role = Literal["gateway", "gate", "bridge", "ingest", "alerts", "reader"]
SERVICE_ROLES: frozenset[Role] = frozenset({"ingest", "alerts"})  # log in on the service listeners only
GATEWAY_LEAVES: tuple[wire.Leaf, ...] = ("data", "meta", "status", "health")  # an agent's; "gate" is the gate system's
DEFAULT_INGEST = "parkmon-ingest"
DEFAULT_ALERTS = "parkmon-alerts"
ALERTS_TOPIC = "parkmon/alerts/#"
# client ids the platform's own clients use or mosquitto assigns (auto_id_prefix): never a device's login
RESERVED_PREFIXES = ("parkmon-", "auto-")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    gateway: tuple[str, str, str] | None = None  # (park, enterprise, gateway) of a gateway account

    @property
    def service(self) -> bool:
        return self.role in SERVICE_ROLES


def new_share_group() -> str:
    """Ingest's shared-subscription group: 128 random bits, so no device can guess it and join (see above)."""
    return f"parkmon-{secrets.token_hex(16)}"


def gateway_account(park: str, enterprise: str, gateway: str) -> Account:
    for kind, value in (("park", park), ("enterprise", enterprise), ("gateway", gateway)):
        try:
            wire.check_id(kind, value)
        except wire.ContractError as exc:
            raise AuthError(str(exc)) from None
    return Account(f"{park}.{enterprise}.{gateway}", "gateway",
                   write=tuple(wire.topic(park, enterprise, gateway, leaf) for leaf in GATEWAY_LEAVES),
                   read=(wire.topic(park, enterprise, gateway, "ack"),),  # its own acks, no one else's
                   gateway=(park, enterprise, gateway))


def gate_account(park: str) -> Account:
    return Account(f"{park}.gates", "gate", write=(f"{wire.TOPIC_ROOT}/{park}/+/+/gate",))


def bridge_account(park: str) -> Account:
    """A park broker bridging its park's topics to a regional broker (ingest/mqtt/broker.py bridge_conf): the
    uplink leaves out, the acks of the regional ingest back in. Not the acks out: the bridge must not
    confirm a batch to anyone."""
    # and its link state (bridge_conf's notification_topic, the same string): refused, it would close the link
    return Account(f"{park}.bridge", "bridge",
                   write=(*(f"{wire.TOPIC_ROOT}/{park}/+/+/{leaf}" for leaf in wire.UPLINK_LEAVES),
                          f"$SYS/broker/connection/parkmon-bridge-{park}/state"),
                   read=tuple(f"{wire.TOPIC_ROOT}/{park}/+/+/{leaf}" for leaf in wire.DOWNLINK_LEAVES))


def _check_names(accounts: Sequence[Account]) -> None:
    seen: set[str] = set()
    services = [a.name for a in accounts if a.service]
    for a in accounts:
        if not _NAME.match(a.name):
            raise AuthError(f"account name {a.name!r}: use 1-128 characters of A-Z a-z 0-9 _ . -")
        if a.name in seen:
            raise AuthError(f"account name {a.name!r} is used twice")
        seen.add(a.name)
        if a.service:
            continue
        # a device's login is its client id: one equal to a service's would take that service's session
        taken = [p for p in (*RESERVED_PREFIXES, *services) if a.name.startswith(p)]
        if taken:
            raise AuthError(f"account name {a.name!r} ({a.role}) starts with {taken[0]!r}, kept for the platform's "
                            "own client ids (ingest workers, the alert sender, mosquitto's assigned ids): the "
                            "broker uses a device's login as its client id, so choose another name")


def plan(gateways: Iterable[tuple[str, str, str]], ingest: str = DEFAULT_INGEST, alerts: str | None = DEFAULT_ALERTS,
         alerts_topic: str = ALERTS_TOPIC, readers: Sequence[tuple[str, str]] = (),
         bridges: Sequence[str] = ()) -> list[Account]:
    """Every account and what it may do: the gateways, a gate system per park, park bridges, ingest, alerts,
    readers."""
    gws = sorted(set(gateways))
    accounts = [gateway_account(*g) for g in gws]
    accounts += [gate_account(p) for p in sorted({g[0] for g in gws})]
    for park in sorted(set(bridges)):
        try:
            wire.check_id("park", park)
        except wire.ContractError as exc:
            raise AuthError(str(exc)) from None
        accounts.append(bridge_account(park))
    accounts.append(Account(ingest, "ingest", read=(f"{wire.TOPIC_ROOT}/#",),
                            write=(f"{wire.TOPIC_ROOT}/+/+/+/ack",)))  # after each commit (consumer.py)
    if alerts:
        accounts.append(Account(alerts, "alerts", write=(alerts_topic,)))
    accounts += [Account(name, "reader", read=(topic,)) for name, topic in readers]
    _check_names(accounts)
    return accounts


def acl_text(accounts: Sequence[Account]) -> str:
    lines = ["# mosquitto ACL written by `parkmon ingest mqtt-auth`: edit the registry and run it again,",
             "# not this file. Nothing before the first `user` line: anonymous clients may do nothing.",
             "# mosquitto 2.0 checks `read` on every message it delivers, not when a client subscribes: a",
             "# subscription to what an account may not read is accepted and gets nothing (ingest/mqtt/acl.py).", ""]
    for a in accounts:
        what = "/".join(a.gateway) if a.gateway else a.role
        lines.append(f"# {a.role}: {what}")
        lines.append(f"user {a.name}")
        lines += [f"topic write {t}" for t in a.write]
        lines += [f"topic read {t}" for t in a.read]
        lines.append("")
    return "\n".join(lines)
