"""``parkmon edge check / poll / scan`` with an IEC 104 station: docs/iec104.md's example config, pointed at a c104
(lib60870) station on loopback holding the values written out below. What is asserted is what a site engineer
reads on the screen."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

c104 = pytest.importorskip("c104", reason="c104 (lib60870) is a test dependency: ./dev.sh test installs it")

from parkmon.cli import main as parkmon  # noqa: E402
from parkmon.common.netutil import free_port  # noqa: E402

DOC = Path(__file__).resolve().parent.parent / "docs" / "iec104.md"


@pytest.fixture
def station() -> Iterator[int]:
    """The doc example's objects: the station's raw values (before the config's scale)."""
    port = free_port()
    server = c104.Server(ip="127.0.0.1", port=port)
    st = server.add_station(common_address=1)
    raw: list[tuple[int, Any, Any]] = [
        (16385, c104.Type.M_ME_NC_1, c104.ShortInfo(actual=1520.5)),
        (16386, c104.Type.M_ME_NB_1, c104.ScaledInfo(actual=c104.Int16(11050))),
        (16387, c104.Type.M_ME_NA_1, c104.NormalizedInfo(actual=c104.NormalizedFloat(0.95))),
        (25601, c104.Type.M_IT_NA_1, c104.BinaryCounterInfo(counter=1234567, sequence=c104.UInt5(0),
                                                            quality=c104.BinaryCounterQuality())),
        (1, c104.Type.M_DP_NA_1, c104.DoubleInfo(state=c104.Double.ON)),
        (2, c104.Type.M_SP_NA_1, c104.SingleInfo(on=False)),
    ]
    for ioa, kind, info in raw:
        st.add_point(io_address=ioa, type=kind).info = info
    server.start()
    try:
        yield port
    finally:
        server.stop()


def example(tmp_path: Path, port: int) -> Path:
    block = re.search(r"```yaml\n(gateway:.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert block, "docs/iec104.md lost its config example"
    path = tmp_path / "gw.yaml"
    path.write_text(block.group(1).replace("host: 10.20.0.5 ", f"host: 127.0.0.1\n    port: {port}"),
                    encoding="utf-8")
    return path


def edge(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = parkmon(["edge", *argv])
    except SystemExit as exc:  # argparse's --help
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_lists_the_station_and_its_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = edge(capsys, "check", "-c", str(example(tmp_path, 2404)))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == ("device sub110 '110kV 总降变电站' iec104 127.0.0.1:2404 CA 1: 6 objects, handed over every "
                        "1.0 s; GI on connect and every 900 s, counters on connect and every 900 s; t0/t1/t2/t3 "
                        "30/15/10/20 s, k 12, w 8; time station (UTC+8 h)")
    assert lines[2].split() == ["sub110.in1_p", "elec.active_power", "ioa", "16385", "x1+0", "[kW]", "1#进线",
                                "有功功率"]
    assert lines[-1] == "6 points OK"
    code, out, _ = edge(capsys, "--help")
    assert code == 0 and "  iec104: IEC 60870-5-104 stations: substation RTUs, PV plant telecontrol" in out


def test_poll_once_reads_what_the_station_holds(station: int, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = edge(capsys, "poll", "-c", str(example(tmp_path, station)), "--once")
    assert code == 0, err
    got = {s["point"]: (s["value"], s["quality_text"]) for s in map(json.loads, out.splitlines())}
    assert got == {
        "sub110.in1_p": (1520.5, "good:none"),
        "sub110.in1_u": (110500.0, "good:none"),  # 11050 x 10 V
        "sub110.in1_pf": (pytest.approx(0.95, abs=1 / 32768), "good:none"),  # NVA 31130 / 32768, +- the rounding
        "sub110.in1_import": (pytest.approx(123456.7), "good:none"),  # 1234567 x 0.1 kWh
        "sub110.qf1": (1.0, "good:none"),  # double point on
        "sub110.fire": (0.0, "good:none"),
    }


def test_scan_lists_every_object_and_says_when_nobody_answers(station: int, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = edge(capsys, "scan", "--iec104", "--host", "127.0.0.1", "--port", str(station), "--timeout", "10")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["ca"], r["ioa"], r["type"], r["quality"]) for r in rows] == [
        (1, 1, "M_DP_NA_1", "good:none"), (1, 2, "M_SP_NA_1", "good:none"), (1, 16385, "M_ME_NC_1", "good:none"),
        (1, 16386, "M_ME_NB_1", "good:none"), (1, 16387, "M_ME_NA_1", "good:none"),
        (1, 25601, "M_IT_NA_1", "good:none")]
    assert [r["value"] for r in rows][:4] == [1.0, 0.0, 1520.5, 11050.0]
    assert rows[5]["value"] == 1234567.0
    assert err.strip() == f"6 information object(s) from common address(es) 1 on 127.0.0.1:{station}"

    nobody = free_port()
    code, out, err = edge(capsys, "scan", "--iec104", "--host", "127.0.0.1", "--port", str(nobody))
    assert (code, out) == (1, "")
    assert err.startswith(f"parkmon edge scan --iec104: 127.0.0.1:{nobody}: ") and "Connect call failed" in err
