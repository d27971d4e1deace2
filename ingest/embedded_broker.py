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

from parkmon.netutil import free_port

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
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {self.workdir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 100\n"
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
