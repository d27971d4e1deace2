"""The InfluxDB mirror. No InfluxDB 2 server can run on this machine, so InfluxDB is replaced by a
recording HTTP endpoint (a real HTTP server in a thread) that keeps every request and answers as
InfluxDB's /api/v2/write does (204, or scripted failures); what the mirror sent is checked line by
line against the line-protocol spec (tests/line_protocol.py). The SQL side is a real SQLite store."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from ingest.store import StoreError, open_store
from ingest.store.base import IncomingBatch
from ingest.store.mirrors import open_mirror
from parkmon.common import quality, wire
from tests.line_protocol import LineProtocolError, parse, parse_line

T0 = 1_795_363_200_000


@dataclass
class Recorder:
    requests: list[dict[str, object]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # statuses to answer first, then 204

    def lines(self) -> list:  # type: ignore[type-arg]
        return [ln for r in self.requests if r["status"] == 204 for ln in parse(str(r["body"]))]


@pytest.fixture
def influx() -> Iterator[tuple[Recorder, int]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            status = rec.script.pop(0) if rec.script else 204
            u = urlsplit(self.path)
            rec.requests.append({"path": u.path, "query": parse_qs(u.query), "auth": self.headers.get("Authorization"),
                                 "body": body.decode(), "status": status})
            self.send_response(status)
            if status != 204:
                msg = b'{"code":"unavailable","message":"scripted failure"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
            else:
                self.end_headers()

        def log_message(self, *_a: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield rec, server.server_address[1]
    finally:
        server.shutdown()


def _batch(seq: int, samples: list[tuple[str, int, float | None, int]]) -> IncomingBatch:
    return IncomingBatch("demo", "e01", "gw1", wire.Batch(1, "gw1", seq, T0, samples), T0)


def test_line_protocol_parser_follows_the_spec() -> None:
    ln = parse_line(r'weather,location\ us=San\,Francisco temp=82,ok=t,note="a \"b\"",n=3i 1465839830100400200')
    assert (ln.measurement, ln.tags, ln.timestamp) == ("weather", {"location us": "San,Francisco"}, 1465839830100400200)
    assert ln.fields == {"temp": 82.0, "ok": True, "note": 'a "b"', "n": 3}
    for bad in ("weather", "weather temp", "weather,loc= temp=1", "weather temp=abc", "weather temp=1 12.5",
                'weather note="open'):
        with pytest.raises(LineProtocolError):
            parse_line(bad)


def test_every_sample_reaches_influxdb_as_sent(influx: tuple[Recorder, int], tmp_path: Path) -> None:
    rec, port = influx
    mirror = open_mirror(f"influxdb://s3cr3t@127.0.0.1:{port}/parkmon?org=park-ops")
    st = open_store(f"sqlite:///{tmp_path / 'p.db'}", mirrors=[mirror])
    st.create_schema()
    bad = quality.bad(quality.Reason.COMM_FAILURE)
    sent = [("grid.import", T0 + i * 1000, 100.0 + i / 4, 0) for i in range(7000)]
    sent += [("grid.power", T0, None, bad), ("boiler 2,a=b.flow rate", T0, 3.5, 0)]
    st.write_batches([_batch(1, sent)])
    st.close()
    assert {r["path"] for r in rec.requests} == {"/api/v2/write"}
    assert len(rec.requests) == 2  # 7 002 lines in chunks of 5 000
    r0 = rec.requests[0]
    assert r0["auth"] == "Token s3cr3t"
    assert r0["query"] == {"org": ["park-ops"], "bucket": ["parkmon"], "precision": ["ms"]}
    got = {(ln.tags["device"], ln.tags["point"], ln.timestamp): ln for ln in rec.lines()}
    assert len(got) == len(sent)
    for key, ts, value, q in sent:
        dev, _, pt = key.partition(".")
        ln = got[(dev, pt, ts)]
        assert ln.measurement == "readings" and ln.tags["park"] == "demo" and ln.tags["enterprise"] == "e01"
        assert ln.fields.get("value") == value and ln.fields["quality"] == q
    assert "value" not in got[("grid", "power", T0)].fields  # a null stays a gap, its quality says why
    assert got[("boiler 2,a=b", "flow rate", T0)].fields["value"] == 3.5  # escaped and back


def test_retries_then_succeeds(influx: tuple[Recorder, int], tmp_path: Path) -> None:
    rec, port = influx
    rec.script = [503, 503]
    st = open_store(f"sqlite:///{tmp_path / 'p.db'}",
                    mirrors=[open_mirror(f"influxdb://t@127.0.0.1:{port}/b?org=o")])
    st.create_schema()
    st.write_batches([_batch(1, [("m.p", T0, 1.0, 0)])])
    assert [r["status"] for r in rec.requests] == [503, 503, 204]
    assert st.count_readings() == 1
    st.close()


def test_influxdb_down_commits_nothing_and_the_retry_writes_once(influx: tuple[Recorder, int],
                                                                 tmp_path: Path) -> None:
    rec, port = influx
    rec.script = [503] * 8  # more than the mirror's retries
    mirror = open_mirror(f"influxdb://t@127.0.0.1:{port}/b?org=o")
    st = open_store(f"sqlite:///{tmp_path / 'p.db'}", mirrors=[mirror])
    st.create_schema()
    batch = _batch(1, [("m.p", T0, 1.0, 0), ("m.p", T0 + 1000, 2.0, 0)])
    with pytest.raises(StoreError, match="HTTP 503"):
        st.write_batches([batch])
    assert st.count_readings() == 0  # not committed, so ingest does not ack: the broker keeps it
    rec.script = []
    st.write_batches([batch])  # ingest's retry
    assert st.count_readings() == 2
    assert sorted(ln.timestamp for ln in rec.lines()) == [T0, T0 + 1000]
    st.close()


def test_unreachable_influxdb_and_bad_urls_are_clear_errors(tmp_path: Path) -> None:
    from parkmon.common.netutil import free_port

    mirror = open_mirror(f"influxdb://t@127.0.0.1:{free_port()}/b?org=o")
    st = open_store(f"sqlite:///{tmp_path / 'p.db'}", mirrors=[mirror])
    st.create_schema()
    with pytest.raises(StoreError, match="unreachable"):
        st.write_batches([_batch(1, [("m.p", T0, 1.0, 0)])])
    assert st.count_readings() == 0
    st.close()
    with pytest.raises(ValueError, match="lacks token, bucket"):
        open_mirror("influxdb://127.0.0.1:8086?org=o")
    with pytest.raises(ValueError, match="not one of influxdb"):
        open_mirror("mqtt://x@h/b")
