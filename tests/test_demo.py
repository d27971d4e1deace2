"""`parkmon demo` as a user runs it: a short run must show a live share and stop cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ingest.store import Store
from parkmon.common.clock import CHINA


@pytest.mark.e2e
def _yesterday_or_today() -> str:  # a run that crosses China's midnight
    return (datetime.now(CHINA) - timedelta(minutes=5)).strftime("%Y-%m-%d")


def test_demo_produces_a_live_share_and_stops_cleanly(tmp_path: Path) -> None:
    started = time.time() * 1000
    proc = subprocess.run(
        [sys.executable, "-m", "parkmon.cli", "demo", "--workdir", str(tmp_path), "--api-port", "0",
         "--duration", "20", "--every", "4", "--speed", "600", "--poll", "1", "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    shares = [ln["share"] for ln in lines if "share" in ln]
    assert shares, f"no share lines in the demo output:\n{proc.stdout[-2000:]}"
    last = shares[-1]
    assert last["name_zh"] == "新能源消纳比例"
    assert 0.0 < last["value"] <= 1.0
    assert last["target"] == pytest.approx(0.8)  # the demo park is a zero-carbon park
    # two clocks, said plainly: the simulated weather's (the sim_time lines) and the readings' (this machine's)
    events = [ln["event"] for ln in lines if "event" in ln]
    assert any(e.startswith("时钟") and "×600" in e and "readings carry this machine's clock" in e for e in events)
    today = datetime.now(CHINA).strftime("%Y-%m-%d")
    assert {ln["data_time"][:10] for ln in lines if "data_time" in ln} <= {today, _yesterday_or_today()}
    readings = [ln["readings"] for ln in lines if "readings" in ln]
    assert readings[-1] > readings[0], "readings must keep arriving while the demo runs"
    # every gateway process exited on its own after the demo's SIGTERM (no orphaned agents)
    logs = sorted(tmp_path.glob("gateway-*.log"))
    assert len(logs) == 4
    assert not any("Traceback" in p.read_text(encoding="utf-8") for p in logs)
    assert not _processes_mentioning(str(tmp_path)), "the demo left processes running"
    # the embedded store keeps its rollups: the minutes the demo ran are summarised
    from ingest.store import open_store

    st = open_store(f"sqlite:///{tmp_path / 'parkmon.db'}")
    pids = [p.id for p in st.points("demo")]
    minutes = st.rollups(pids, 0, 2**62, "1m")
    try:
        _all_six_systems_live(st)
    finally:
        st.close()
    assert sum(r.n_all for rs in minutes.values() for r in rs) > 0
    # the rollups' minutes are this machine's minutes (within the demo's run), not the simulation's June
    stamped = [r.bucket_ms for rs in minutes.values() for r in rs]
    assert started - 60_000 <= min(stamped) and max(stamped) <= time.time() * 1000
    assert "park-office-sim" not in proc.stderr  # the office's writes were all accepted


def _all_six_systems_live(st: Store) -> None:
    """What an operator opening the demo's six-system view would check: every system has data."""
    from ingest.store.records import economy, hazwaste, logistics, registry, safety, services
    from parkmon.common.clock import now_ms

    cov = {c["system"]: c for c in registry.coverage(st, "demo", now_ms())}
    for system in ("energy", "safety", "environment"):  # meters read by the edge agents
        assert cov[system]["expected_devices"] > 0
        assert cov[system]["missing"] == [], (system, cov[system])
    assert cov["logistics"]["expected_devices"] == 2 and cov["logistics"]["reporting_devices"] >= 1
    for system in ("economy", "services"):  # fed by the park office: every producer has filed
        assert cov[system]["enterprises_expected"] == 4 and cov[system]["missing"] == [], cov[system]
    assert logistics.state(st, "demo", now_ms())["entries_24h"] > 0
    figures = economy.figures(st, "demo")
    assert {f["enterprise"] for f in figures} == {"e01", "e02", "e03", "e04"}
    assert len({f["month"] for f in figures}) == 3
    stored = {e["enterprise"] for e in hazwaste.storage(st, "demo", now_ms()) if e["stored_t"] > 0}
    assert stored >= {"e01", "e02"}
    sources = {(s["enterprise"], s["key"]) for s in safety.register(st, "demo")}
    assert sources == {("e02", "r101"), ("e02", "pipe1")}
    assert services.requests(st, "demo")[0]["status"] == "open"
    assert all(d["industry"] for d in services.directory(st, "demo") if d["enterprise"] != "park")
    from fastapi.testclient import TestClient

    from parkmon.api.app import create_app

    card = {e["key"]: e for e in TestClient(create_app(st)).get("/api/v1/parks/demo/scorecard").json()["elements"]}
    for key in ("energy", "safety", "environment", "logistics", "economy", "services"):
        assert card[key]["complete"], card[key]
    assert card["storage_centre"]["live"] and card["platform"]["present"]
    # the operations centre: the API, a live board (the built-in one; the Grafana feed is written) and rules
    assert card["operations_centre"]["complete"] and card["operations_centre"]["reasons"] == []
    assert card["operations_centre"]["facts"]["alert_rules"] > 10


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = p.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if text in cmd:
            found.append(cmd)
    return found


def test_demo_says_what_to_do_when_its_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "parkmon.cli", "demo", "--api-port", str(port),
                              "--workdir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"port {port} is in use; pass --api-port 0" in out.stderr
