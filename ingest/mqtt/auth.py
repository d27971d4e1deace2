"""``parkmon ingest mqtt-auth``: one MQTT login per gateway, and an ACL that keeps each to its own topics.

From the registry (parks → enterprises → gateways: a registry file, the database, or ``--gateway``)
it writes, for mosquitto 2.x (docs/security.md; EMQX equivalents there too):

- ``credentials.yaml`` (0600): every account's password, the one source of truth. Passwords are
  random (``secrets``, 192 bits) and made once: a re-run keeps them, ``--rotate`` / ``--rotate-user``
  replace them, a gateway no longer registered loses its account.
- ``passwd`` (devices: gateways, gate systems, bridges, readers) and ``passwd-services`` (ingest, alerts),
  0600: the accounts hashed in mosquitto's own format (PBKDF2-SHA512, ``$7$``) by ``mosquitto_passwd -U``
  (the plain passwords go to it in a 0600 file, never on a command line), or computed here the same way.
- ``acl``: what each account may write and read (ingest/mqtt/acl.py: the accounts, and why ingest's
  shared-subscription group is a secret). Anonymous clients get nothing.
- ``parkmon.conf``: for ``/etc/mosquitto/conf.d/``: ``per_listener_settings true``; the devices' TLS listener
  (8883: ``passwd``, the login as client id); the services' listeners (loopback 1883, and TLS for ingest in
  another container with ``--service-tls-port``: ``passwd-services``); packet size and connection limits.
- ``gateways/<account>.yaml`` (0600): the ``mqtt:`` block each enterprise pastes into its gateway's
  config; ``ingest.env`` (0600): ``PARKMON_MQTT_USERNAME`` / ``PARKMON_MQTT_PASSWORD`` and the workers'
  secret group ``PARKMON_INGEST_GROUP`` for ingest.

Nothing here prints or logs a password.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ingest.mqtt.acl import (
    ALERTS_TOPIC,
    DEFAULT_ALERTS,
    DEFAULT_INGEST,
    Account,
    acl_text,
    new_share_group,
    plan,
)
from ingest.mqtt.passwords import AuthError, new_password, write_password_file, write_private

__all__ = ["Account", "Listeners", "Result", "acl_text", "conf_text", "generate", "main", "plan"]
CREDENTIALS = "credentials.yaml"


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

# The largest message a gateway sends: a batch of publish.max_samples (at most 20 000) samples, each at most
# ["<64>.<64>",<14-digit ms, up to the year 3000>,<24-character float>,<3-digit quality>] = 177 bytes and a
# comma, so 3.56 MB (tests/test_attacks_mqtt.py sends it); its retained catalogue (meta) is smaller for any
# real gateway. mosquitto checks max_packet_size on the length a packet announces, before it reads or
# allocates it, CONNECT included. 8 MiB: more than twice the largest batch.
MAX_PACKET_SIZE = 8 * 1024 * 1024
MIN_DEVICE_CONNECTIONS = 1000  # the device listener's cap: at least this, at least two per device login
SERVICE_CONNECTIONS = 100  # ingest workers, the alert sender, an operator's tools


@dataclass
class Listeners:
    """Where the generated mosquitto configuration listens, and where its files live on the broker.

    The device listener (TLS, ``tls_port``) is for gateways, gate systems, bridges and readers; the service
    listeners (plain on loopback, ``local_port``; TLS inside the platform's network, ``service_tls_port``)
    for ingest and the alert sender, whose logins only they accept (ingest/mqtt/acl.py says why)."""

    conf_dir: str = "/etc/mosquitto/parkmon"  # passwd, passwd-services and acl, as installed on the broker
    tls_port: int | None = 8883
    tls_bind: str = ""  # all interfaces
    cafile: str = "/etc/mosquitto/certs/ca.crt"
    certfile: str = "/etc/mosquitto/certs/server.crt"
    keyfile: str = "/etc/mosquitto/certs/server.key"
    require_certificate: bool = False
    local_port: int | None = 1883  # plain, loopback only: ingest and alerts on the broker's machine
    local_bind: str = "127.0.0.1"
    service_tls_port: int | None = None  # TLS for ingest in another container or machine (containers: 8884)
    service_tls_bind: str = ""
    max_connections: int | None = None  # device listener; None: max(1000, 2 x device logins)
    service_max_connections: int = SERVICE_CONNECTIONS
    max_packet_size: int = MAX_PACKET_SIZE


def conf_text(lst: Listeners, device_logins: int = 0) -> str:
    d = lst.conf_dir.rstrip("/")
    device_cap = lst.max_connections or max(MIN_DEVICE_CONNECTIONS, 2 * device_logins)
    tls = [f"cafile {lst.cafile}", f"certfile {lst.certfile}", f"keyfile {lst.keyfile}"]
    out = [
        "# mosquitto configuration written by `parkmon ingest mqtt-auth` (docs/security.md).",
        "# Install as /etc/mosquitto/conf.d/parkmon.conf (it replaces deploy/server/mosquitto.conf), then",
        "# `systemctl restart mosquitto`; after re-generating only passwd/passwd-services/acl, `systemctl reload",
        "# mosquitto`. Debian's /etc/mosquitto/mosquitto.conf already sets persistence_location (mosquitto refuses",
        "# a second one); elsewhere add it, with a folder the broker may write (docs/decisions/0003).",
        "per_listener_settings true",
        "# Persistence: mosquitto acknowledges QoS 1 from memory and writes its file at each autosave (2.0.11:",
        "# every autosave_interval + 1 s) and on a clean stop. A crash loses what came since the last save: with",
        "# end-to-end acks (issue 21) only re-sends; a publisher without them loses up to ~6 s of acknowledged",
        "# messages. Each save rewrites and fsyncs the whole queue, the broker waiting meanwhile: 2-3 ms empty,",
        "# ~0.23 s per 100 000 queued 1 KB messages (measured, mosquitto 2.0.11; deploy/server/mosquitto.conf).",
        "persistence true",
        "autosave_on_changes false",
        "autosave_interval 5",
        "# no cap on a persistent session's queue: a cap drops QoS 1 messages for ingest while it is behind. Only",
        "# what an account may read is queued for it (the ACL is checked on delivery): devices get their acks only",
        "max_queued_messages 0",
        "max_inflight_messages 100",
        f"# Limits (issue 20). A packet over {lst.max_packet_size} bytes (the largest batch a gateway may send is",
        "# 3.56 MB) closes its connection before mosquitto reads or allocates it, CONNECT too: payloads of 100 MB",
        "# are refused, not stored. Each listener caps its sockets (max_connections; not re-read on reload): a",
        "# flood of sockets that never log in fills the device listener's, never the services'. mosquitto 2.0.11",
        "# has no setting for the wait for CONNECT: a socket that sends none is closed after 90-95 s (a built-in",
        "# keep-alive of 60 s x 1.5, checked every 5 s; measured 95 s). On the device listener a login holds one",
        "# connection (its client id).",
        f"max_packet_size {lst.max_packet_size}",
        "",
    ]
    if lst.tls_port:
        out += ["# gateways, gate systems, bridges and readers: TLS, a device login, the ACL. The client id is the",
                "# login (use_username_as_clientid): a device holds only its own session and cannot take another's",
                f"listener {lst.tls_port}{' ' + lst.tls_bind if lst.tls_bind else ''}",
                f"max_connections {device_cap}",
                "allow_anonymous false", f"password_file {d}/passwd", f"acl_file {d}/acl",
                "use_username_as_clientid true", *tls,
                f"require_certificate {'true' if lst.require_certificate else 'false'}",
                "# a client certificate (when required) proves the device; the login still names the account",
                "use_identity_as_username false", ""]
    service = ["allow_anonymous false", f"password_file {d}/passwd-services", f"acl_file {d}/acl",
               f"max_connections {lst.service_max_connections}"]
    if lst.service_tls_port:
        out += ["# ingest and the alert sender from another container or machine: TLS, a service login only (no",
                "# device login is in passwd-services), client ids of their own (one per ingest worker)",
                f"listener {lst.service_tls_port}{' ' + lst.service_tls_bind if lst.service_tls_bind else ''}",
                *service, *tls, "require_certificate false", ""]
    if lst.local_port:
        out += ["# ingest and the alert sender on the broker's own machine: loopback only, a service login, the ACL",
                f"listener {lst.local_port} {lst.local_bind}", *service, ""]
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
            f"# and read only parkmon/v1/{park}/{ent}/{gw}/ack (the platform's confirmations, decision 0010).\n"
            f"# The broker takes the login as client id: one connection per login (a second one replaces it).\n")
    return head + yaml.safe_dump({"mqtt": mqtt}, sort_keys=False, allow_unicode=True)


@dataclass
class Result:
    accounts: list[Account]
    new: list[str] = field(default_factory=list)
    rotated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    hashed_by: str = ""
    passwords: dict[str, str] = field(default_factory=dict, repr=False)
    share_group: str = field(default="", repr=False)  # ingest's shared-subscription group (a secret)


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
        group = None
        if prev is None:
            password, since = new_password(), today
            res.new.append(a.name)
        elif rotate or a.name in rotate_set:
            password, since = new_password(), today
            res.rotated.append(a.name)
        else:
            password, since = str(prev["password"]), str(prev.get("since", today))
            group = prev.get("share_group")
        res.passwords[a.name] = password
        entry: dict[str, Any] = {"role": a.role, "password": password, "since": since}
        if a.role == "ingest":  # a secret like the password, rotated with it (ingest/mqtt/acl.py says why)
            entry["share_group"] = res.share_group = str(group or new_share_group())
        if a.write:
            entry["write"] = list(a.write)
        if a.read:
            entry["read"] = list(a.read)
        creds[a.name] = entry
    write_private(out / CREDENTIALS, (
        "# parkmon MQTT accounts. SECRET (0600): every password in clear. Keep it where the operator keeps\n"
        "# secrets; `parkmon ingest mqtt-auth` reads it to keep passwords across runs (docs/security.md).\n"
        + yaml.safe_dump({"version": 1, "accounts": creds}, sort_keys=False, allow_unicode=True)))
    # two password files: a device's login must not work where client ids are chosen freely (acl.py)
    devices = [a for a in accounts if not a.service]
    res.hashed_by = write_password_file(out / "passwd", [(a.name, res.passwords[a.name]) for a in devices], hasher)
    write_password_file(out / "passwd-services", [(a.name, res.passwords[a.name]) for a in accounts if a.service],
                        hasher)
    write_private(out / "acl", acl_text(accounts), 0o644)
    write_private(out / "parkmon.conf", conf_text(listeners, len(devices)), 0o644)
    ingest = next(a for a in accounts if a.role == "ingest")
    write_private(out / "ingest.env", "# for parkmon ingest run (EnvironmentFile=, 0600); the group is a secret too:\n"
                   "# run several workers with --group \"$PARKMON_INGEST_GROUP\" (ingest/mqtt/acl.py)\n"
                   f"PARKMON_MQTT_USERNAME={ingest.name}\nPARKMON_MQTT_PASSWORD={res.passwords[ingest.name]}\n"
                   f"PARKMON_INGEST_GROUP={res.share_group}\n")
    gwdir = out / "gateways"
    gwdir.mkdir(exist_ok=True)
    os.chmod(gwdir, 0o700)
    port = listeners.tls_port or 8883  # the device listener: gateways log in nowhere else
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
                    "parkmon/v1/<park>/<enterprise>/<gateway>/, with its login as client id. Writes credentials.yaml "
                    "(0600), passwd (devices), passwd-services (ingest, alerts), acl, parkmon.conf, ingest.env and "
                    "gateways/*.yaml into --out; passwords are never printed. "
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
    b.add_argument("--conf-dir", default=Listeners.conf_dir,
                   help="where passwd, passwd-services and acl are installed on the broker")
    b.add_argument("--tls-port", type=int, default=8883, help="the devices' TLS listener (0: none)")
    b.add_argument("--cafile", default=Listeners.cafile)
    b.add_argument("--certfile", default=Listeners.certfile)
    b.add_argument("--keyfile", default=Listeners.keyfile)
    b.add_argument("--require-certificate", action="store_true", help="gateways must also show a client certificate")
    b.add_argument("--local-port", type=int, default=1883,
                   help="services' plain listener on --local-bind, for ingest and alerts on this machine (0: none)")
    b.add_argument("--local-bind", default="127.0.0.1")
    b.add_argument("--service-tls-port", type=int, default=0,
                   help="services' TLS listener, for ingest in another container or machine; do not expose it to "
                        "gateways (containers: 8884; default 0: none)")
    b.add_argument("--max-connections", type=int, default=None, metavar="N",
                   help="sockets the device listener holds at once (default: 2 per device login, at least 1000)")
    b.add_argument("--max-packet-size", type=int, default=MAX_PACKET_SIZE, metavar="BYTES",
                   help=f"largest MQTT packet accepted (default {MAX_PACKET_SIZE}: the largest batch is 3.56 MB)")
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
        if not (args.local_port or args.service_tls_port):
            raise AuthError("--local-port 0 and no --service-tls-port: ingest would have no listener (gateways' "
                            "logins only work on --tls-port); give --service-tls-port 8884 for ingest in a container")
        if args.max_packet_size < 4 * 1024 * 1024 or (args.max_connections is not None and args.max_connections < 1):
            raise AuthError("--max-packet-size: at least 4194304 (a full batch is 3.56 MB); --max-connections: "
                            "at least 1")
        lst = Listeners(conf_dir=args.conf_dir, tls_port=args.tls_port or None, cafile=args.cafile,
                        certfile=args.certfile, keyfile=args.keyfile, require_certificate=args.require_certificate,
                        local_port=args.local_port or None, local_bind=args.local_bind,
                        service_tls_port=args.service_tls_port or None, max_connections=args.max_connections,
                        max_packet_size=args.max_packet_size)
        res = generate(args.out, accounts, lst, rotate=args.rotate, rotate_users=args.rotate_user,
                       broker_host=args.broker_host, gateway_ca=args.gateway_ca)
    except (AuthError, OSError) as exc:
        print(f"parkmon ingest mqtt-auth: {exc}", file=sys.stderr)
        return 2
    counts: dict[str, int] = {}
    for a in res.accounts:
        counts[a.role] = counts.get(a.role, 0) + 1
    print(f"wrote {args.out}/: credentials.yaml (0600, every password), passwd and passwd-services (hashed by "
          f"{res.hashed_by}), acl, parkmon.conf, ingest.env (0600, with the workers' group), gateways/*.yaml "
          "(0600, one per gateway)")
    print("accounts: " + ", ".join(f"{n} {role}" for role, n in counts.items()))
    for label, names in (("new", res.new), ("rotated", res.rotated), ("removed", res.removed)):
        if names:
            print(f"{label}: {', '.join(names)}")
    print("next: install passwd, passwd-services and acl in the broker's --conf-dir, parkmon.conf in "
          "/etc/mosquitto/conf.d/, "
          "then reload mosquitto; hand each enterprise its gateways/*.yaml (docs/security.md)")
    return 0
