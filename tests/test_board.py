"""The built-in live board (issue 8): its event stream and snapshot over the HTTP API, and the page
itself in real headless Chromium over the whole pipeline (simulated park -> edge agents -> mosquitto ->
ingest -> SQLite -> API), updating without a reload when a device in the park goes offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from analytics.alerts import actions as alert_actions
from analytics.alerts.rules import Rule, load_rules
from analytics.indicators.new_energy_share import compute_park_share
from ingest.mqtt.broker import Mosquitto
from ingest.store import Store, open_store
from parkmon.api.app import create_app
from parkmon.common import quality
from parkmon.common.clock import CHINA, now_ms
from parkmon.common.netutil import free_port
from tests.mqtt_util import wait_for
from tests.test_e2e_park import RunningAgents

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def _until(page: Any, expression: str, timeout: int = 30_000) -> None:
    """Poll a JavaScript expression until it is truthy. Not Playwright's wait_for_function: that evaluates a
    string the board's Content-Security-Policy (script-src 'self', no eval) rightly refuses; an evaluate from
    the test driver is not the page's own script."""
    wait_for(lambda: bool(page.evaluate(expression)), timeout=timeout / 1000, what=expression)


class Api:
    """The app on uvicorn on a free loopback port, as `parkmon api` serves it."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.base = f"http://127.0.0.1:{port or free_port()}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=int(self.base.rsplit(":", 1)[1]),
                                                    log_level="warning", timeout_graceful_shutdown=1))
        self.thread = threading.Thread(target=self.server.run, name="api", daemon=True)
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=10, what="uvicorn to start")

    def stop(self) -> None:
        self.server.config.app.state.board.close()  # as parkmon api and the demo do: streams end first
        self.server.should_exit = True
        self.thread.join(10)


@contextmanager
def serve(app: Any) -> Iterator[Api]:
    api = Api(app)
    try:
        yield api
    finally:
        api.stop()


# ---- the stream and the snapshot over HTTP, on a small park written directly ----------------------
def _small_park(store: Store, now_ms: int) -> None:
    """Twenty minutes of a one-enterprise park: 360 kW from the grid, 360 kW of PV, a battery idle, a
    water meter whose gateway gets no answer, and a meter silent for two hours."""
    store.upsert_park("p1", "测试零碳园区", "Test zero-carbon park", "zero_carbon", "内蒙古自治区")
    metrics = {"e1.grid.import": "elec.import.energy", "e1.grid.export": "elec.export.energy",
               "e1.grid.power": "elec.active_power", "e1.pv1.generation": "pv.generation.energy",
               "e1.pv1.power": "pv.power", "e1.bess.power": "storage.power", "e1.water.flow": "water.flow",
               "e1.old.power": "elec.active_power"}
    rows: list[tuple[str, int, float | None, int]] = []
    for k in range(121):  # every 10 s
        ts = now_ms - 1_200_000 + k * 10_000
        rows += [("e1.grid.import", ts, 1000.0 + k, 0), ("e1.grid.export", ts, 50.0, 0),
                 ("e1.grid.power", ts, 360.0, 0), ("e1.pv1.generation", ts, 2000.0 + k, 0),
                 ("e1.pv1.power", ts, 360.0, 0), ("e1.bess.power", ts, 0.0, 0),
                 ("e1.water.flow", ts, None, quality.bad(quality.Reason.COMM_FAILURE))]
    rows.append(("e1.old.power", now_ms - 7_200_000, 5.0, 0))
    store.import_readings("p1", rows, metrics)


@pytest.fixture(params=["sqlite", "postgresql"])
def small_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any, int]]:
    url = f"sqlite:///{tmp_path / 'board.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    store = open_store(url)
    store.create_schema()
    t_now = now_ms()
    _small_park(store, t_now)
    rule = Rule(id="pv_low", kind="threshold", metric="pv.power", threshold=500, op="<", severity="critical",
                system="energy", name_zh="光伏功率偏低", name_en="PV power low")
    alert_actions.fire(store, rule, alert_actions.Subject("p1/e1/pv1/power", "p1", "e1", "pv1", "pv.power", "kW",
                                                          "光伏功率", "测试零碳园区"), t_now, t_now, 360.0, 360.0)
    app = create_app(store)
    try:
        with serve(app) as api:
            yield api.base, app, t_now
    finally:
        store.close()


def _events(lines: Iterator[str], n: int) -> list[dict[str, Any]]:
    """The first ``n`` events of a text/event-stream, each as {field: value}."""
    out: list[dict[str, Any]] = []
    event: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if event:
                out.append(event)
                event = {}
                if len(out) == n:
                    return out
            continue
        field, _, value = line.partition(":")
        event[field] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended after {len(out)} events")


def test_live_stream_sends_the_park_every_interval_and_stops_with_the_client(
        small_api: tuple[str, Any, int]) -> None:
    base, app, now_ms = small_api
    t0 = time.monotonic()
    with httpx.Client(base_url=base, timeout=10) as http, \
            http.stream("GET", "/api/v1/parks/p1/live", params={"every": 1}) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        lines = resp.iter_lines()  # kept: closing the iterator closes the connection
        first, second = _events(lines, 2)
        assert app.state.board.streams == 1
    elapsed = time.monotonic() - t0
    assert (first["id"], second["id"]) == ("1", "2") and first["retry"] == "3000"
    assert 0.9 < elapsed < 5, f"two events at every=1 took {elapsed:.1f} s"
    a, b = json.loads(first["data"]), json.loads(second["data"])
    assert b["at_ms"] > a["at_ms"] >= now_ms
    assert a["park"] == {"key": "p1", "name_zh": "测试零碳园区", "name_en": "Test zero-carbon park",
                         "park_class": "zero_carbon", "region": "内蒙古自治区"}
    # the client went away: the server stops its stream (no snapshot computed for nobody)
    wait_for(lambda: app.state.board.streams == 0, timeout=5, what="the stream to end after the client left")


def test_snapshot_is_what_the_indicator_api_says(small_api: tuple[str, Any, int]) -> None:
    base, app, now_ms = small_api
    with httpx.Client(base_url=base, timeout=10) as http:
        snap = http.get("/api/v1/parks/p1/live/snapshot").json()
        share = snap["share"]
        # the same share the indicator API computes for the same window: China day so far
        start = datetime.fromisoformat(share["period_start"])
        assert start == datetime.fromtimestamp(now_ms / 1000, tz=CHINA).replace(hour=0, minute=0, second=0,
                                                                                 microsecond=0)
        api = http.get("/api/v1/parks/p1/indicators/new-energy-share",
                       params={"start": share["period_start"], "end": share["period_end"]}).json()
        assert share["value"] == api["value"] and share["status"] == api["status"]
        assert share["target"] == api["target"] == pytest.approx(0.8)
        assert share["inputs"]["numerator"] == api["inputs"]["numerator"]
        if start.timestamp() * 1000 <= now_ms - 1_200_000:  # not just after midnight: the whole 20 minutes
            assert share["value"] == pytest.approx(120 / (120 + 120 - 0), abs=1e-6)  # PV 120 kWh, grid 120 kWh
        # power now: the latest good value of each source, the grid at its boundary meter only
        now = snap["power"]["now"]
        assert now["pv"] == {"kw": 360.0, "points": 1, "reporting": 1}
        assert now["grid"] == {"kw": 360.0, "points": 1, "reporting": 1}  # e1/old is stale and no boundary meter
        assert now["storage"]["kw"] == 0.0 and now["wind"] == {"kw": None, "points": 0, "reporting": 0}
        hist = snap["power"]["history"]
        assert len(hist["t"]) == 30 and hist["t"][-1] // 60_000 == snap["at_ms"] // 60_000
        # the 19 minutes up to the last sample (a slow machine may take the snapshot a minute later)
        last = [t // 60_000 for t in hist["t"]].index(now_ms // 60_000)
        assert hist["pv"][last - 18:last + 1] == [360.0] * 19 and hist["wind"] == [None] * 30
        # devices: the water meter answers nothing, e1/old has been silent for two hours
        dev = snap["devices"]
        assert (dev["total"], dev["offline"]) == (5, 2)
        assert {(d["device"], d["reason"]) for d in dev["offline_devices"]} == {("water", "comm_failure"),
                                                                                ("old", "stale")}
        # alerts: the firing one, with its message in both languages
        (alert,) = snap["alerts"]["items"]
        assert snap["alerts"]["firing"] == 1 and alert["severity"] == "critical"
        assert "光伏功率偏低" in alert["text_zh"] and "PV power low" in alert["text_en"]
        # the hourly trend: one entry per hour of today so far, the last one the hour running now
        trend = snap["share_trend"]
        assert trend[0]["start_ms"] == start.timestamp() * 1000 and trend[-1]["end_ms"] == snap["at_ms"]
        hour = compute_park_share(app.state.store, "p1", trend[-1]["start_ms"], trend[-1]["end_ms"])
        assert trend[-1]["value"] == hour.value


def test_board_pages_and_unknown_parks(small_api: tuple[str, Any, int]) -> None:
    base, _app, _now = small_api
    with httpx.Client(base_url=base, timeout=10) as http:
        for path in ("/api/v1/parks/nope/live", "/api/v1/parks/nope/live/snapshot"):
            r = http.get(path)
            assert r.status_code == 404 and r.json()["detail"] == (
                "park 'nope' is not registered; GET /api/v1/parks lists the parks"), path
        page = http.get("/board/nope")
        assert page.status_code == 404 and "未登记" in page.text and "is not registered" in page.text
        assert http.get("/api/v1/parks/p1/live", params={"every": 0.1}).status_code == 422
        listing = http.get("/board/", follow_redirects=True)
        assert listing.status_code == 200 and 'href="p1"' in listing.text and "测试零碳园区" in listing.text
        page = http.get("/board/p1")
        assert page.status_code == 200 and '<meta name="parkmon-park" content="p1">' in page.text
        # everything the page loads comes from the platform itself: a park without internet works
        assert "http://" not in page.text.replace("<!--", "") and "https://" not in page.text
        for asset in ("/static/echarts/echarts.min.js", "/static/board.js", "/static/board.css",
                      "/static/echarts/LICENSE", "/static/echarts/NOTICE"):
            assert http.get(asset).status_code == 200, asset
        assert "javascript" in http.get("/static/echarts/echarts.min.js").headers["content-type"]
        assert 'id="board-note" class="board-note" hidden' in page.text  # no note configured: none shown


def test_board_shows_the_deployments_note_escaped(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    st = open_store(f"sqlite:///{tmp_path / 'n.db'}")
    st.create_schema()
    st.upsert_park("p1", "测试园区", "Test park", "low_carbon", "")
    try:
        page = TestClient(create_app(st, board_note="时钟 <clocks> & data")).get("/board/p1")
    finally:
        st.close()
    assert page.status_code == 200
    assert '<p id="board-note" class="board-note">时钟 &lt;clocks&gt; &amp; data</p>' in page.text


# ---- the page in Chromium over the real pipeline -------------------------------------------------
SPEED = 60.0  # a simulated minute per second
NOON = int(datetime(2025, 6, 21, 12, 0, tzinfo=CHINA).timestamp() * 1000)  # the sun high: PV well up
PV_ALERT = Rule(id="pv_inverter_bad_data", kind="quality", metric="pv.power", duration_s=0, severity="warning",
                system="energy", name_zh="光伏逆变器数据异常", name_en="PV inverter reporting bad data")


@dataclass
class Pipeline:
    sim: Any
    app: Any
    api: Api
    store: Store
    agents: RunningAgents
    started_ms: int


@pytest.fixture
def pipeline(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Pipeline]:
    from analytics.alerts.service import AlertService
    from ingest.mqtt.config import IngestConfig
    from ingest.mqtt.consumer import Ingestor
    from ingest.store.maintenance import Maintenance, MaintenanceConfig
    from simulators.runner import start_in_thread

    db_url = f"sqlite:///{tmp_path / 'parkmon.db'}"
    sim = start_in_thread(seed=8, speed=SPEED, tick_s=0.25, sim_start_ms=NOON)
    store = open_store(db_url)
    store.create_schema()
    info = sim.park_info()
    store.upsert_park(info["key"], info["name_zh"], info["name_en"], info["park_class"], info["region"])
    ingest = Ingestor(IngestConfig(mqtt_port=mosquitto.port, db_url=db_url, max_wait_ms=20), store)
    alerts = AlertService(store, [*load_rules(), PV_ALERT], tick_s=1.0, dispatch=False)
    alerts.attach(ingest)
    ingest.start()
    alerts.start()
    maintenance = Maintenance(store, MaintenanceConfig(rollup_every_s=2.0))
    maintenance.start()
    configs = sim.edge_configs("127.0.0.1", mosquitto.port, str(tmp_path / "buffers"), poll_interval_s=0.5)
    for c in configs.values():
        c["publish"] = {"interval_s": 0.5}
    agents = RunningAgents(list(configs.values()))
    started_ms = now_ms() // 60_000 * 60_000
    agents.start()
    app = create_app(store, alert_engine=alerts.engine)
    try:
        with serve(app) as api:
            yield Pipeline(sim, app, api, store, agents, started_ms)
    finally:
        agents.stop()
        maintenance.stop()
        alerts.stop()
        ingest.stop()
        store.close()
        sim.stop()


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed (./dev.sh test installs it: apt-get install chromium)")
    return path


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _settled(store: Store) -> bool:
    """Nothing more arriving (the agents stopped) and the rollups caught up."""
    before = store.count_readings()
    time.sleep(1.0)
    return store.count_readings() == before and store.rollup_backlog_from() is None


@pytest.mark.e2e
def test_board_in_chromium_shows_the_live_share_and_follows_the_park(pipeline: Pipeline) -> None:
    from playwright.sync_api import sync_playwright

    p = pipeline
    chromium = _chromium()
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    wait_for(lambda: p.app.state.board.snapshot("demo")["share"]["value"] is not None, timeout=30,
             what="a first share from the pipeline")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{p.api.base}/board/demo?every=1")
            # 1. the page comes up in Chinese with the park's name and a live share
            _until(page, "document.getElementById('park-name').textContent === '示范零碳产业园'", timeout=15_000)
            _until(page, "/%$/.test(document.getElementById('share-value').textContent)", timeout=15_000)
            assert page.inner_text("#conn") == "实时"
            assert page.inner_text("#share-target") == "80%"
            # the pipeline started this morning, not at midnight: the board says since when there is data
            # and how complete it is since then, instead of a day's 0 % beside a valid share
            detail = page.inner_text("#share-detail")
            started = datetime.fromtimestamp(p.started_ms / 1000, tz=CHINA)
            if started.hour >= 1:  # in the day's first hour the data starts in its first interval: no note
                m = re.search(r"数据完整率 (\d+)%（数据自 (\d\d:\d\d) 起）", detail)
                assert m, detail
                assert int(m.group(1)) > 50, detail
                assert started.strftime("%H:%M") <= m.group(2) <= datetime.now(CHINA).strftime("%H:%M"), detail
            assert page.inner_text("#share-status") in ("达标", "未达标")
            last = page.evaluate("window.parkmonBoard.last.share")
            assert page.inner_text("#share-value") == f"{last['value'] * 100:.1f}%"
            # the power chart has the half hour's series, PV producing at noon
            pv_before = float(page.get_attribute("#power-pv", "data-kw") or 0)
            assert pv_before > 1000, f"PV at noon: {pv_before} kW"
            series = dict(page.evaluate("""echarts.getInstanceByDom(document.getElementById('power-chart'))
                .getOption().series.map(s => [s.id, s.data.filter(v => v[1] !== null)])"""))
            assert len(series["pv"]) >= 2 and len(series["grid"]) >= 2, series  # a line: the minutes, then now
            assert series["pv"][-1][1] == pv_before
            offline_before = int(page.inner_text("#devices-offline"))
            events_before = page.evaluate("window.parkmonBoard.events")
            updated_before = int(page.get_attribute("#updated", "data-ms") or 0)
            page.evaluate("window.__sameDocument = true")  # gone if the page reloaded

            # 2. the 5 MW inverter of e01 stops answering: the page follows without a reload
            p.sim.set_fault("e01", "pv1", "offline")
            _until(page, f"+document.getElementById('devices-offline').textContent > {offline_before}", timeout=15_000)
            _until(page,
                f"+document.getElementById('power-pv').getAttribute('data-kw') < {pv_before * 0.6}", timeout=15_000)
            _until(page, "document.getElementById('alerts').textContent.includes('光伏逆变器数据异常')", timeout=15_000)
            assert "e01/pv1" in page.inner_text("#devices-list") and "通讯中断" in page.inner_text("#devices-list")
            assert page.evaluate("window.__sameDocument") is True
            assert page.evaluate("window.parkmonBoard.events") > events_before
            assert int(page.get_attribute("#updated", "data-ms") or 0) > updated_before
            assert page.inner_text("#share-value").endswith("%")
            shot = page.screenshot(path=str(ARTIFACTS / "board.png"), full_page=True)
            width, height = _png_size(shot)
            assert width >= 1400 and height >= 700 and len(shot) > 50_000, (width, height, len(shot))

            # 3. English: every label switches, the park's English name, the legend of the power chart
            page.click("#lang-toggle")
            assert page.inner_text("#park-name") == "Demo zero-carbon industrial park"
            assert page.inner_text("[data-i18n=share_title]") == "New-energy share today"
            assert page.inner_text("#lang-toggle") == "中文"
            assert page.inner_text("#share-status") in ("Target met", "Below target")
            assert "PV inverter reporting bad data" in page.inner_text("#alerts")
            assert page.evaluate("document.documentElement.lang") == "en"
            legend = page.evaluate("""echarts.getInstanceByDom(document.getElementById('power-chart'))
                .getOption().series.map(s => s.name)""")
            assert legend == ["PV", "Wind", "Storage (+discharge)", "Grid (+import)"]
            page.screenshot(path=str(ARTIFACTS / "board-en.png"), full_page=True)
            page.click("#lang-toggle")
            assert page.inner_text("[data-i18n=share_title]") == "今日新能源消纳比例"

            # 4. the number on the screen is the platform's. While readings stream in, a window's last
            #    second is still arriving; with the gateways stopped and everything stored, the page's
            #    share is exactly what the indicator API answers for the same window
            p.agents.stop()
            wait_for(lambda: _settled(p.store), timeout=20, what="the last readings stored and rolled up")
            settled_ms = now_ms()
            _until(page, f"Date.parse(window.parkmonBoard.last.share.period_end) > {settled_ms}",
                                   timeout=10_000)
            last = page.evaluate("window.parkmonBoard.last.share")
            api = httpx.get(f"{p.api.base}/api/v1/parks/demo/indicators/new-energy-share",
                            params={"start": last["period_start"], "end": last["period_end"]}, timeout=10).json()
            assert api["value"] == pytest.approx(last["value"], abs=1e-9) and api["status"] == last["status"]
            assert page.inner_text("#share-value") == f"{api['value'] * 100:.1f}%"
            assert page.inner_text("#share-status") == {"met": "达标", "below_target": "未达标"}[api["status"]]

            # 5. the API goes away: the page says so (and EventSource keeps trying to reconnect)
            p.api.stop()
            _until(page, "document.getElementById('conn').textContent === '连接中断'", timeout=10_000)
            assert not errors, errors
        finally:
            browser.close()


# ---- parkmon demo opens with the board -------------------------------------------------------------
@pytest.mark.parametrize(("argv", "env", "platform", "opened"), [
    ([], {"DISPLAY": ":0"}, "linux", True),
    ([], {"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
    ([], {}, "linux", False),  # a server or CI: print the address, open nothing, fail nothing
    ([], {}, "darwin", True),
    (["--no-browser"], {"DISPLAY": ":0"}, "linux", False),
    (["--json"], {"DISPLAY": ":0"}, "linux", False),  # scripts read the address from the JSON line
])
def test_demo_prints_the_board_and_opens_it_where_there_is_a_display(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
        env: dict[str, str], platform: str, opened: bool) -> None:
    import webbrowser

    from parkmon import demo

    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(demo.sys, "platform", platform)
    calls: list[str] = []
    monkeypatch.setattr(webbrowser, "open", lambda url: calls.append(url) or True)
    url = "http://127.0.0.1:8080/board/demo"
    demo._announce_board(demo._parser().parse_args(argv), url)
    assert calls == ([url] if opened else [])
    out = capsys.readouterr().out
    if "--json" in argv:
        assert json.loads(out) == {"event": "live board", "board": url}
    else:
        assert f"实时看板 live board: {url}" in out


def test_snapshot_json_has_no_nan() -> None:
    from parkmon.api.board import _finite

    assert _finite({"a": float("nan"), "b": [float("inf"), 1.5, {"c": -float("inf")}], "d": "x"}) == {
        "a": None, "b": [None, 1.5, {"c": None}], "d": "x"}


def test_board_with_authentication_uses_the_token_cookie_and_says_when_refused(tmp_path: Path) -> None:
    """With tokens on (issue 10) a browser's board authenticates with the ``parkmon_token`` cookie
    (EventSource sends no headers); a token revoked while the board is open shows 未授权 and why."""
    from playwright.sync_api import sync_playwright

    from parkmon.api.auth import TOKEN_COOKIE, Auth, create_token, principal_of, revoke_token

    chromium = _chromium()
    store = open_store(f"sqlite:///{tmp_path / 'auth.db'}")
    store.create_schema()
    _small_park(store, now_ms())
    token = create_token(store, principal_of("operator", "park office", park="p1"))
    with store.engine.connect() as conn:
        token_id = conn.execute(text("SELECT max(id) FROM api_tokens")).scalar_one()
    api = Api(create_app(store, auth=Auth(store, cache_s=0)))
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
            try:
                context = browser.new_context()
                page = context.new_page()
                # the page is a shell without data; its stream is refused and the page asks for a token
                first = page.goto(f"{api.base}/board/p1?every=1")
                assert first is not None and first.status == 200
                _until(page, "document.getElementById('conn').textContent === '未授权'", timeout=10_000)
                assert page.is_visible("#signin")
                page.fill("#token", token)
                page.click("#signin button")
                _until(page, "document.getElementById('conn').textContent === '实时'", timeout=10_000)
                assert not page.is_visible("#signin")
                assert any(c["name"] == TOKEN_COOKIE for c in context.cookies())  # kept for the next visit
                assert page.inner_text("#share-value").endswith("%")
                assert revoke_token(store, token_id)
                port = int(api.base.rsplit(":", 1)[1])
                api.stop()  # the server restarts; the board's EventSource reconnects with a revoked token
                api = Api(create_app(store, auth=Auth(store, cache_s=0)), port)
                _until(page, "document.getElementById('conn').textContent === '未授权'", timeout=15_000)
                assert "401" in page.inner_text("#share-detail")
            finally:
                browser.close()
    finally:
        api.stop()
        store.close()
