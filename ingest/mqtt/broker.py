"""A local mosquitto as a child process: for ``parkmon demo`` and for the tests.

Persistence is on, so QoS 1 messages queued for a persistent session survive a broker restart;
``max_queued_messages 0`` lifts the per-client queue cap so a subscriber that falls behind (ingest
while its database is down) loses nothing — the broker's memory is the buffer then.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ingest.mqtt.auth import MAX_PACKET_SIZE
from parkmon.common.netutil import free_port
from parkmon.common.wire import DOWNLINK_LEAVES, TOPIC_ROOT, UPLINK_LEAVES

CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def find_mosquitto() -> str:
    for c in CANDIDATES:
        path = shutil.which(c) or (c if Path(c).is_file() else None)
        if path:
            return path
    raise FileNotFoundError(
        "mosquitto is not installed: install it (Debian/Ubuntu: sudo apt-get install mosquitto) "
        "or pass --mqtt-host to use a broker you already run"
    )




@dataclass
class Mosquitto:
    workdir: Path
    port: int
    host: str = "127.0.0.1"
    extra_conf: str = ""
    pre_conf: str = ""  # global options that must come before the first listener
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def write_conf(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # Started as root, mosquitto drops to the "mosquitto" user, which cannot write into a
        # root-owned folder (or even reach one under a 0700 temp dir): its persistence file would
        # silently not be written, and sessions and queued messages would not survive a restart.
        # A local broker for the demo and the tests runs as whoever started it.
        run_as = f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        self.conf_path.write_text(
            run_as + self.pre_conf +
            f"listener {self.port} {self.host}\n"
            # anonymous on loopback: the demo's and the tests' broker, never one a device reaches from outside
            # (`parkmon ingest mqtt-auth` writes that one: logins, ACL, the login as client id)
            "allow_anonymous true\n"
            "max_connections 10000\n"
            # the demo's and the tests' queues are small: a save every 2 s costs a few ms
            "# mosquitto acknowledges QoS 1 from memory and saves at each autosave (2.0.11: every interval + 1 s)\n"
            "# and on SIGTERM. A crash loses what came since the last save: with end-to-end acks only re-sends;\n"
            "# a publisher without them loses up to 2 s of acknowledged messages.\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_on_changes false\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 100\n"
            # what parkmon.conf allows (ingest/mqtt/auth.py MAX_PACKET_SIZE): a full batch is 3.56 MB at most
            f"max_packet_size {MAX_PACKET_SIZE}\n"
            f"log_dest file {self.workdir}/mosquitto.log\n"
            + self.extra_conf,
            encoding="utf-8",
        )

    def start(self, timeout: float = 10.0) -> None:
        self.write_conf()
        self.proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf_path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err.strip()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file on the way out
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def start_mosquitto(workdir: Path, port: int | None = None, extra_conf: str = "", pre_conf: str = "") -> Mosquitto:
    broker = Mosquitto(Path(workdir), port or free_port(), extra_conf=extra_conf, pre_conf=pre_conf)
    broker.start()
    return broker


def bridge_state_topic(park: str) -> str:
    """Where a park's bridge says whether its link is up (retained 1) or down (0), on both brokers."""
    return f"$SYS/broker/connection/parkmon-bridge-{park}/state"


def bridge_conf(park: str, remote_host: str, remote_port: int = 1883, *, client_id: str | None = None,
                keepalive_s: int = 30, restart: tuple[int, int] = (2, 30),
                remote_username: str | None = None, remote_password: str | None = None,
                remote_cafile: str | None = None) -> str:
    """The ``connection`` section that makes a park's broker forward its park's uplink topics (``data``,
    ``meta``, ``status``, ``health``, ``gate``) to the regional broker, and bring the regional ingest's
    end-to-end acks (``…/ack``, docs/decisions/0010) back to the park's gateways (docs/capacity.md, "The
    park-to-region bridge"). Append it to the park broker's configuration (``Mosquitto(extra_conf=...)``):
    it must come after the general options.

    - QoS 1 both ways of the hop, ``cleansession false`` (and so ``local_cleansession false``): what the
      park broker has accepted is queued in the bridge's session while the link is down (and kept in
      the persistence file across a restart of the park broker), then sent in order; a message sent
      but not yet acknowledged when the link broke is sent again, so the region may see it twice,
      and ingest's writes (idempotent on point and time, one ``gateway_batches`` row per gateway and
      seq) absorb it.
    - A fixed client id per park on both ends: the session survives reconnects only under the same id. With a
      login (``remote_username``, the regional broker's ``<park>.bridge`` account) the remote client id is
      that login: the regional broker's device listener uses the login as client id anyway
      (``use_username_as_clientid``), so the two agree, and no other login can take the bridge's session.
    - MQTT 3.1.1, not 5: mosquitto 2.0's bridge sends no session-expiry interval with MQTT 5, so its
      session would end with every dropped connection and ``cleansession false`` would mean nothing
      (mosquitto issues #1632, #2424, #2793). 3.1.1 sessions have no expiry to forget.
    - ``try_private true``: the regional broker knows a bridge (loop detection, retained ``meta`` and
      ``status`` passed on as retained).
    - ``restart_timeout base cap``: reconnect with jittered back-off, so 100 parks whose link comes
      back together do not all knock at once.
    - Topic prefixes none: the park's topics arrive unchanged (the park is already in the topic).
    - One ``out`` line per uplink leaf and one ``in`` line for the acks, rather than ``parkmon/v1/<park>/#
      both``: an ack brought in must not match an ``out`` pattern and go back up, and data sent up must not
      come back down. Ingest sends acks at QoS 0: one in flight when the link breaks is lost, and costs its
      gateway a re-send (docs/decisions/0010).
    """
    cid = client_id or f"parkmon-bridge-{park}"
    lines = [
        f"connection {cid}",
        f"address {remote_host}:{remote_port}",
        f"remote_clientid {remote_username or cid}",
        f"local_clientid {cid}-local",
        "bridge_protocol_version mqttv311",
        "try_private true",
        "cleansession false",
        "local_cleansession false",
        f"keepalive_interval {max(5, keepalive_s)}",
        f"restart_timeout {restart[0]} {restart[1]}",
        "start_type automatic",
        "notifications true",
        # one topic per park whatever the ids; the regional broker's ACL lets `<park>.bridge` write it there
        # (ingest/mqtt/acl.py bridge_account): a refused publish would close the link at every connect
        f"notification_topic {bridge_state_topic(park)}",
        *(f"topic {TOPIC_ROOT}/{park}/+/+/{leaf} out 1" for leaf in UPLINK_LEAVES),
        *(f"topic {TOPIC_ROOT}/{park}/+/+/{leaf} in 1" for leaf in DOWNLINK_LEAVES),
    ]
    if remote_cafile:  # TLS to the regional broker's device listener, the login and the password inside it
        lines.append(f"bridge_cafile {remote_cafile}")
    if remote_username:
        lines.append(f"remote_username {remote_username}")
        if remote_password:
            lines.append(f"remote_password {remote_password}")
    return "\n".join(lines) + "\n"
