"""``parkmon ingest mqtt-auth``: one MQTT login per gateway, and an ACL that keeps each to its own topics.

From the registry (parks → enterprises → gateways: a registry file, the database, or ``--gateway``)
it writes, for mosquitto 2.x (docs/security.md; EMQX equivalents there too):

- ``credentials.yaml`` (0600): every account's password, the one source of truth. Passwords are
  random (``secrets``, 192 bits) and made once: a re-run keeps them, ``--rotate`` / ``--rotate-user``
  replace them, a gateway no longer registered loses its account.
- ``passwd`` (0600): the same accounts hashed in mosquitto's own format (PBKDF2-SHA512, ``$7$``) by
  ``mosquitto_passwd -U`` (the plain passwords go to it in a 0600 file, never on a command line), or
  computed here the same way when that tool is missing.
- ``acl``: a gateway ``park.enterprise.gateway`` may only *write* ``parkmon/v1/<park>/<enterprise>/
  <gateway>/data|meta|status|health`` and *read* only its own ``…/ack`` (the platform's end-to-end acks,
  docs/decisions/0010); ``<park>.gates`` (the park's gate system) writes ``parkmon/v1/<park>/+/+/gate``;
  ``<park>.bridge`` (``--bridge``, on a regional broker) writes the park's uplink topics
  (``parkmon/v1/<park>/+/+/data|meta|status|health|gate``) and reads its acks (``parkmon/v1/<park>/+/+/ack``,
  carried back to the park broker); the ingest account reads ``parkmon/v1/#`` (a ``$share/<group>/…``
  subscription too: mosquitto checks the topic after the group) and writes every gateway's ack
  (``parkmon/v1/+/+/+/ack``); the alerts account writes the alert topic (``parkmon/alerts/#``); ``--reader``
  accounts read a topic. Anonymous clients get nothing.
- ``parkmon.conf``: for ``/etc/mosquitto/conf.d/``: ``per_listener_settings true``, a TLS listener
  (8883) and a loopback listener (1883, for ingest and alerts on the broker's machine), both
  ``allow_anonymous false`` with the password and ACL files.
- ``gateways/<account>.yaml`` (0600): the ``mqtt:`` block each enterprise pastes into its gateway's
  config; ``ingest.env`` (0600): ``PARKMON_MQTT_USERNAME`` / ``PARKMON_MQTT_PASSWORD`` for ingest.

Nothing here prints or logs a password.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from ingest.mqtt.passwords import AuthError, new_password, write_password_file, write_private
from parkmon.common import wire

Role = Literal["gateway", "gate", "bridge", "ingest", "alerts", "reader"]
GATEWAY_LEAVES: tuple[wire.Leaf, ...] = ("data", "meta", "status", "health")  # an agent's; "gate" is the gate system's
DEFAULT_INGEST = "parkmon-ingest"
DEFAULT_ALERTS = "parkmon-alerts"
ALERTS_TOPIC = "parkmon/alerts/#"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
CREDENTIALS = "credentials.yaml"


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    gateway: tuple[str, str, str] | None = None  # (park, enterprise, gateway) of a gateway account


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
    return Account(f"{park}.bridge", "bridge",
                   write=tuple(f"{wire.TOPIC_ROOT}/{park}/+/+/{leaf}" for leaf in wire.UPLINK_LEAVES),
                   read=tuple(f"{wire.TOPIC_ROOT}/{park}/+/+/{leaf}" for leaf in wire.DOWNLINK_LEAVES))


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
    seen: set[str] = set()
    for a in accounts:
        if not _NAME.match(a.name):
            raise AuthError(f"account name {a.name!r}: use 1-128 characters of A-Z a-z 0-9 _ . -")
        if a.name in seen:
            raise AuthError(f"account name {a.name!r} is used twice")
        seen.add(a.name)
    return accounts


# ---- where the gateways come from ------------------------------------------------------------------

def gateways_from_registry(path: Path) -> list[tuple[str, str, str]]:
    """The gateways a registry file (``parkmon records registry`` YAML) lists under its enterprises."""
    from ingest.store.records.base import RecordError
    from ingest.store.records.registry import read_file

    try:
        reg = read_file(path)
    except RecordError as exc:
        raise AuthError(str(exc)) from None
    return [(reg.park.key, e.key, g) for e in reg.enterprises for g in e.gateways]


def gateways_from_db(url: str) -> list[tuple[str, str, str]]:
    """Every gateway the database knows: registered, or seen by ingest."""
    from ingest.store import open_store

    store = open_store(url)
    try:
        store.create_schema()
        return [(p.key, g.enterprise, g.gateway) for p in store.parks() for g in store.gateways(p.key)]
    finally:
        store.close()


def parse_gateway(text: str) -> tuple[str, str, str]:
    parts = text.split("/")
    if len(parts) != 3:
        raise AuthError(f"--gateway {text!r}: write it park/enterprise/gateway")
    return parts[0], parts[1], parts[2]


# ---- the files ------------------------------------------------------------------------------------------

@dataclass
class Listeners:
    """Where the generated mosquitto configuration listens, and where its files live on the broker."""

    conf_dir: str = "/etc/mosquitto/parkmon"  # passwd and acl, as installed on the broker
    tls_port: int | None = 8883
    tls_bind: str = ""  # all interfaces
    cafile: str = "/etc/mosquitto/certs/ca.crt"
    certfile: str = "/etc/mosquitto/certs/server.crt"
    keyfile: str = "/etc/mosquitto/certs/server.key"
    require_certificate: bool = False
    local_port: int | None = 1883  # plain, loopback only: ingest and alerts on the broker's machine
    local_bind: str = "127.0.0.1"


def acl_text(accounts: Sequence[Account]) -> str:
    lines = ["# mosquitto ACL written by `parkmon ingest mqtt-auth`: edit the registry and run it again,",
             "# not this file. Nothing before the first `user` line: anonymous clients may do nothing.", ""]
    for a in accounts:
        what = "/".join(a.gateway) if a.gateway else a.role
        lines.append(f"# {a.role}: {what}")
        lines.append(f"user {a.name}")
        lines += [f"topic write {t}" for t in a.write]
        lines += [f"topic read {t}" for t in a.read]
        lines.append("")
    return "\n".join(lines)


def conf_text(lst: Listeners) -> str:
    d = lst.conf_dir.rstrip("/")
    auth = (f"allow_anonymous false\npassword_file {d}/passwd\nacl_file {d}/acl\n")
    out = [
        "# mosquitto configuration written by `parkmon ingest mqtt-auth` (docs/security.md).",
        "# Install as /etc/mosquitto/conf.d/parkmon.conf (it replaces deploy/server/mosquitto.conf), then",
        "# `systemctl restart mosquitto`; after re-generating only passwd/acl, `systemctl reload mosquitto`.",
        "# Debian's /etc/mosquitto/mosquitto.conf already sets persistence_location (mosquitto refuses a",
        "# second one); elsewhere add it, with a folder the broker may write (docs/decisions/0003).",
        "per_listener_settings true",
        "# Persistence: mosquitto acknowledges QoS 1 from memory and writes its file at each autosave (2.0.11:",
        "# every autosave_interval + 1 s) and on a clean stop. A crash loses what came since the last save: with",
        "# end-to-end acks (issue 21) only re-sends; a publisher without them loses up to ~6 s of acknowledged",
        "# messages. Each save rewrites and fsyncs the whole queue, the broker waiting meanwhile: 2-3 ms empty,",
        "# ~0.23 s per 100 000 queued 1 KB messages (measured, mosquitto 2.0.11; deploy/server/mosquitto.conf).",
        "persistence true",
        "autosave_on_changes false",
        "autosave_interval 5",
        "# no cap on a persistent session's queue: a cap drops QoS 1 messages for ingest while it is behind",
        "max_queued_messages 0",
        "max_inflight_messages 100",
        "",
    ]
    if lst.tls_port:
        out += ["# gateways, gate systems and anyone off this machine: TLS, a login, the ACL",
                f"listener {lst.tls_port}{' ' + lst.tls_bind if lst.tls_bind else ''}",
                auth.rstrip("\n"),
                f"cafile {lst.cafile}", f"certfile {lst.certfile}", f"keyfile {lst.keyfile}",
                f"require_certificate {'true' if lst.require_certificate else 'false'}",
                "# a client certificate (when required) proves the device; the login still names the account",
                "use_identity_as_username false", ""]
    if lst.local_port:
        out += ["# ingest and the alert sender on the broker's own machine: loopback only, a login, the ACL",
                f"listener {lst.local_port} {lst.local_bind}", auth.rstrip("\n"), ""]
    return "\n".join(out)


def gateway_file_text(a: Account, password: str, host: str, port: int, ca_file: str | None) -> str:
    assert a.gateway is not None
    park, ent, gw = a.gateway
    mqtt: dict[str, Any] = {"host": host, "port": port, "username": a.name, "password": password}
    if ca_file:
        mqtt["tls"] = {"ca_file": ca_file}
    head = (f"# MQTT login of gateway {park}/{ent}/{gw}. SECRET: hand it to the enterprise over a safe channel;\n"
            f"# keep it 0600. Put this mqtt: block into the gateway's config (`parkmon edge check -c` it).\n"
            f"# It may publish only parkmon/v1/{park}/{ent}/{gw}/data|meta|status|health, with gateway id {gw},\n"
            f"# and read only parkmon/v1/{park}/{ent}/{gw}/ack (the platform's confirmations, decision 0010).\n")
    return head + yaml.safe_dump({"mqtt": mqtt}, sort_keys=False, allow_unicode=True)


@dataclass
class Result:
    accounts: list[Account]
    new: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    hashed_by: str = ""
    passwords: dict[str, str] = field(default_factory=dict, repr=False)


def load_credentials(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise AuthError(f"{path}: not YAML ({exc})") from None
    accounts = doc.get("accounts") if isinstance(doc, dict) else None
    if not isinstance(accounts, dict):
        raise AuthError(f"{path}: no `accounts:` mapping; it is not a credentials file written by mqtt-auth")
    return {str(k): v for k, v in accounts.items() if isinstance(v, dict) and v.get("password")}


def generate(out: Path, accounts: Sequence[Account], listeners: Listeners | None = None, *,
             rotate: bool = False, rotate_users: Iterable[str] = (), broker_host: str = "mqtt.park.example",
             gateway_ca: str | None = "/etc/parkmon/ca.crt", hasher: str | None = "auto") -> Result:
    """Write every file into ``out``; existing passwords are kept unless rotated."""
    listeners = listeners or Listeners()
    # the folder keeps its permissions: it may be where the broker reads passwd and acl (every secret file
    # in it is 0600 by itself)
    out.mkdir(parents=True, exist_ok=True)
    old = load_credentials(out / CREDENTIALS)
    names = {a.name for a in accounts}
    rotate_set = set(rotate_users)
    unknown = rotate_set - names
    if unknown:
        raise AuthError(f"--rotate-user {', '.join(sorted(unknown))}: no such account")
    res = Result(list(accounts), removed=sorted(set(old) - names))
    today = datetime.now(UTC).date().isoformat()
    creds: dict[str, dict[str, Any]] = {}
    for a in accounts:
        prev = old.get(a.name)
        if prev is None:
            password, since = new_password(), today
            res.new.append(a.name)
        elif rotate or a.name in rotate_set:
            password, since = new_password(), today
            res.rotated.append(a.name)
        else:
            password, since = str(prev["password"]), str(prev.get("since", today))
        res.passwords[a.name] = password
        entry: dict[str, Any] = {"role": a.role, "password": password, "since": since}
        if a.write:
            entry["write"] = list(a.write)
        if a.read:
            entry["read"] = list(a.read)
        creds[a.name] = entry
    write_private(out / CREDENTIALS, (
        "# parkmon MQTT accounts. SECRET (0600): every password in clear. Keep it where the operator keeps\n"
        "# secrets; `parkmon ingest mqtt-auth` reads it to keep passwords across runs (docs/security.md).\n"
        + yaml.safe_dump({"version": 1, "accounts": creds}, sort_keys=False, allow_unicode=True)))
    res.hashed_by = write_password_file(out / "passwd", [(a.name, res.passwords[a.name]) for a in accounts], hasher)
    write_private(out / "acl", acl_text(accounts), 0o644)
    write_private(out / "parkmon.conf", conf_text(listeners), 0o644)
    ingest = next(a for a in accounts if a.role == "ingest")
    write_private(out / "ingest.env", "# for parkmon ingest run (EnvironmentFile=, 0600)\n"
                   f"PARKMON_MQTT_USERNAME={ingest.name}\nPARKMON_MQTT_PASSWORD={res.passwords[ingest.name]}\n")
    gwdir = out / "gateways"
    gwdir.mkdir(exist_ok=True)
    os.chmod(gwdir, 0o700)
    port = listeners.tls_port or listeners.local_port or 1883
    wanted: set[str] = set()
    for a in accounts:
        if a.role == "gateway":
            wanted.add(f"{a.name}.yaml")
            write_private(gwdir / f"{a.name}.yaml",
                           gateway_file_text(a, res.passwords[a.name], broker_host, port,
                                             gateway_ca if listeners.tls_port else None))
    for stale in gwdir.glob("*.yaml"):
        if stale.name not in wanted:
            stale.unlink()
    return res


# ---- command ------------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="parkmon ingest mqtt-auth",
        description="Per-gateway MQTT logins and an ACL for mosquitto: each gateway may publish only under "
                    "parkmon/v1/<park>/<enterprise>/<gateway>/. Writes credentials.yaml (0600), passwd, acl, "
                    "parkmon.conf, ingest.env and gateways/*.yaml into --out; passwords are never printed. "
                    "See docs/security.md.")
    src = ap.add_argument_group("gateways (at least one source; they add up)")
    src.add_argument("--registry", action="append", default=[], type=Path, metavar="FILE",
                     help="park registry YAML (parkmon records registry format): enterprises' gateways lists")
    src.add_argument("--db", default=None, metavar="URL", help="every gateway this database knows")
    src.add_argument("--gateway", action="append", default=[], metavar="PARK/ENTERPRISE/GATEWAY")
    ap.add_argument("--out", type=Path, default=Path("mqtt-auth"), help="output folder (default ./mqtt-auth)")
    ap.add_argument("--rotate", action="store_true", help="new passwords for every account")
    ap.add_argument("--rotate-user", action="append", default=[], metavar="ACCOUNT",
                    help="a new password for this account (repeatable)")
    ap.add_argument("--ingest-user", default=DEFAULT_INGEST)
    ap.add_argument("--alerts-user", default=DEFAULT_ALERTS, help="account of the MQTT alert channel ('' for none)")
    ap.add_argument("--alerts-topic", default=ALERTS_TOPIC, help="what the alerts account may publish")
    ap.add_argument("--reader", action="append", default=[], metavar="NAME=TOPIC",
                    help="a read-only account, e.g. scada=parkmon/alerts/# (repeatable)")
    ap.add_argument("--bridge", action="append", default=[], metavar="PARK",
                    help="on a regional broker: an account <park>.bridge for that park broker's bridge, writing "
                         "the park's uplink topics and reading its acks (repeatable)")
    b = ap.add_argument_group("broker (what parkmon.conf says)")
    b.add_argument("--conf-dir", default=Listeners.conf_dir, help="where passwd and acl are installed on the broker")
    b.add_argument("--tls-port", type=int, default=8883, help="TLS listener (0: none)")
    b.add_argument("--cafile", default=Listeners.cafile)
    b.add_argument("--certfile", default=Listeners.certfile)
    b.add_argument("--keyfile", default=Listeners.keyfile)
    b.add_argument("--require-certificate", action="store_true", help="gateways must also show a client certificate")
    b.add_argument("--local-port", type=int, default=1883, help="plain listener on --local-bind (0: none)")
    b.add_argument("--local-bind", default="127.0.0.1")
    g = ap.add_argument_group("gateway files (gateways/*.yaml)")
    g.add_argument("--broker-host", default="mqtt.park.example", help="the broker's name as gateways reach it")
    g.add_argument("--gateway-ca", default="/etc/parkmon/ca.crt", help="the CA file's path on the gateways")
    args = ap.parse_args(argv)
    try:
        gws = [parse_gateway(t) for t in args.gateway]
        for path in args.registry:
            gws += gateways_from_registry(path)
        if args.db:
            gws += gateways_from_db(args.db)
        if not gws:
            raise AuthError("no gateways: give --registry FILE, --db URL or --gateway PARK/ENTERPRISE/GATEWAY")
        readers = []
        for r in args.reader:
            name, eq, topic = r.partition("=")
            if not eq or not topic:
                raise AuthError(f"--reader {r!r}: write it NAME=TOPIC")
            readers.append((name, topic))
        accounts = plan(gws, args.ingest_user, args.alerts_user or None, args.alerts_topic, readers, args.bridge)
        lst = Listeners(args.conf_dir, args.tls_port or None, "", args.cafile, args.certfile, args.keyfile,
                        args.require_certificate, args.local_port or None, args.local_bind)
        res = generate(args.out, accounts, lst, rotate=args.rotate, rotate_users=args.rotate_user,
                       broker_host=args.broker_host, gateway_ca=args.gateway_ca)
    except (AuthError, OSError) as exc:
        print(f"parkmon ingest mqtt-auth: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for a in res.accounts:
        counts[a.role] = counts.get(a.role, 0) + 1
    print(f"wrote {args.out}/: credentials.yaml (0600, every password), passwd (hashed by {res.hashed_by}), acl, "
          f"parkmon.conf, ingest.env (0600), gateways/*.yaml (0600, one per gateway)")
    print("accounts: " + ", ".join(f"{n} {role}" for role, n in counts.items()))
    for label, names in (("new", res.new), ("rotated", res.rotated), ("removed", res.removed)):
        if names:
            print(f"{label}: {', '.join(names)}")
    print("next: install passwd and acl in the broker's --conf-dir, parkmon.conf in /etc/mosquitto/conf.d/, "
          "then reload mosquitto; hand each enterprise its gateways/*.yaml (docs/security.md)")
    return 0
