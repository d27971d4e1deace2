"""``parkmon ingest run`` as it ships, as a process the benchmark watches (bench/ingest_pg.py).

The command runs with its defaults - rollup maintenance every 30 s, the alert engine, the board feed -
as a park runs it; only ``--stats-every 1`` is added, so its log says every second how many new rows it
has committed (its own counter, for the rate; what was lost or doubled is counted from the stored rows).
It runs under bench/_threads.py, which calls the same ``ingest.cli.main`` and records each thread's CPU.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

_STATS = re.compile(r"ingest \S+ (?:running|stopped): (\d+) messages, (\d+) samples, (\d+) new rows")


class ShippedIngest:
    """``parkmon ingest run --db URL --mqtt-port PORT`` with the shipped defaults, in its own process."""

    def __init__(self, url: str, port: int, client_id: str, log: Path) -> None:
        self.threads_file = log.with_suffix(".threads.json")
        cmd = [sys.executable, str(Path(__file__).with_name("_threads.py")), str(self.threads_file)]
        env = {k: v for k, v in os.environ.items() if k != "PARKMON_ENV"}  # a bench, not production secrets
        self.proc = subprocess.Popen([*cmd, "ingest", "run", "--db", url, "--mqtt-port", str(port),
                                      "--client-id", client_id, "--stats-every", "1"],
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.log = log
        self.connected = threading.Event()
        self.points: list[tuple[float, int]] = []  # (when read, new rows committed so far)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        atexit.register(self._kill)  # a bench interrupted mid-run leaves no ingest behind

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.log.open("a", encoding="utf-8") as out:
            for line in self.proc.stderr:
                out.write(line)
                if "ingest connected" in line:
                    self.connected.set()
                m = _STATS.search(line)
                if m:
                    self.points.append((time.perf_counter(), int(m.group(3))))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def thread_cpu(self) -> dict[str, float]:
        """CPU seconds so far of each of its threads, by name (as of its last second)."""
        try:
            got: dict[str, float] = json.loads(self.threads_file.read_text())
        except (OSError, ValueError):
            return {}
        return got

    def inserted(self) -> int:
        return self.points[-1][1] if self.points else 0

    def at(self, when: float) -> tuple[float, int]:
        """The last count logged at or before ``when`` (the log says it once a second)."""
        best = self.points[0] if self.points else (when, 0)
        for p in self.points:
            if p[0] > when:
                break
            best = p
        return best

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        if self.proc.returncode not in (0, -signal.SIGTERM):
            tail = self.log.read_text(encoding="utf-8").splitlines()[-15:]
            raise RuntimeError(f"parkmon ingest run exited {self.proc.returncode}:\n" + "\n".join(tail))
