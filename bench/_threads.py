"""Run ``parkmon ingest run`` (ingest.cli.main, the shipped code, unchanged) and record the CPU seconds of
each of its threads by name - writers, the MQTT loop, maintenance, alerts, board feed - to a JSON file
once a second (bench/_shipped.py; py-spy is not installed here, and /proc has every thread's counters).

    python bench/_threads.py OUT_JSON ingest run --db URL ...
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def thread_cpu() -> dict[str, float]:
    """CPU seconds per thread name (threads of one name, e.g. the alert engine's, added up)."""
    tck = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for t in threading.enumerate():
        if t.native_id is None:
            continue
        try:
            f = Path(f"/proc/self/task/{t.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = "paho (MQTT loop)" if t.name.startswith("paho") else t.name.rstrip("0123456789").rstrip("-")
        out[name] = out.get(name, 0.0) + (int(f[11]) + int(f[12])) / tck
    return out


def main() -> int:
    dest = Path(sys.argv[1])
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: every thread's stack, to stderr
    stop = threading.Event()

    def record() -> None:
        tmp = dest.with_suffix(".tmp")
        while not stop.wait(1.0):
            tmp.write_text(json.dumps(thread_cpu()))
            os.replace(tmp, dest)

    threading.Thread(target=record, name="bench-sampler", daemon=True).start()
    from ingest.cli import main as ingest_main

    try:
        return ingest_main(sys.argv[3:])
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main())
