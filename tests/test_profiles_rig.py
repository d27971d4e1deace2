"""The device library's rig and its own checks: every shipped device profile names its manual, says what was
checked and what assumed, has a hand-worked case, and ``parkmon edge check --profiles`` lists it.

A case is a device laid out from the manual's register table, written here independently of the profile:
each row is (table, register number as the document prints it, type, word order, value), ``offset`` says how
the document numbers its registers (1: "register 3000" is sent as 2999; 30001: Eastron's 3xxxx numbers), and
the value is encoded with ``struct`` here, not by the agent's decoder. A real pymodbus server serves the rows,
the real Modbus driver polls them through the profile, and the samples are compared with values worked out
by hand in the case files (tests/test_profiles_meters.py, _inverters.py, _storage.py)."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from edge_agent.cli import main as edge_main
from edge_agent.config import parse_config
from edge_agent.drivers.modbus import ModbusConfig, ModbusTcpDriver
from parkmon.common import quality
from tests.modbus_server import register_server

PROFILES = Path(__file__).resolve().parents[1] / "edge_agent" / "profiles"
KINDS = {"meter", "inverter", "storage", "flow_meter"}
_FMT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q",
        "float32": ">f", "float64": ">d"}

# (table, number as printed, type, word order "ABCD" high word first / "CDAB" low word first, value or raw words)
Row = tuple[str, int, str, str, float | list[int]]


@dataclass(frozen=True)
class Case:
    profile: str
    rows: list[Row]
    expected: dict[str, float | str]  # point -> engineering value, or the quality text of a bad sample
    offset: int = 0  # the document's number of the register sent as address 0
    unit: int = 1
    partial: bool = False  # an extra case for one situation (a NaN, a night): the first case covers every point
    note: str = field(default="", compare=False)


def words(kind: str, order: str, value: float) -> list[int]:
    """The register words a device holding ``value`` sends, as the manual describes its encoding."""
    raw = struct.pack(_FMT[kind], value if kind.startswith("float") else int(value))
    ws = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
    return ws[::-1] if order == "CDAB" else ws


def poll(case: Case) -> dict[str, tuple[float | None, int]]:
    tables: dict[str, dict[int, int]] = {}
    for table, number, kind, order, value in case.rows:
        ws = list(value) if isinstance(value, list) else words(kind, order, value)
        for i, w in enumerate(ws):
            tables.setdefault(table, {})[number - case.offset + i] = w
    with register_server({case.unit: tables}) as port:
        cfg = parse_config({"gateway": {"park": "p", "enterprise": "e", "id": "g"},
                            "devices": [{"id": "dev", "profile": case.profile, "unit": case.unit, "port": port}]})
        device = cfg.devices[0]
        assert isinstance(device, ModbusConfig)

        async def read() -> list[tuple[str, int, float | None, int]]:
            drv = ModbusTcpDriver(device)
            await drv.open()
            try:
                return await drv.read()
            finally:
                await drv.close()

        samples = asyncio.run(read())
    return {key.split(".", 1)[1]: (value, q) for key, _ts, value, q in samples}


def check(case: Case) -> None:
    got = poll(case)
    if not case.partial:
        assert set(case.expected) == set(got), f"{case.profile}: every point needs a hand-worked value"
    for name, want in case.expected.items():
        value, q = got[name]
        if isinstance(want, str):
            assert (value, quality.describe(q)) == (None, want), f"{case.profile}.{name}"
        else:
            assert q == quality.GOOD, f"{case.profile}.{name}: {quality.describe(q)}"
            assert value == pytest.approx(want, rel=1e-6, abs=1e-9), f"{case.profile}.{name}"


def device_profiles() -> dict[str, dict[str, object]]:
    """The shipped profiles of real devices (the simulator's own sim_* maps are not part of the library)."""
    out = {}
    for path in sorted(PROFILES.glob("*.yaml")):
        if not path.stem.startswith("sim_"):
            out[path.stem] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return out


def test_the_library_has_twenty_device_profiles() -> None:
    assert len(device_profiles()) >= 20, sorted(device_profiles())


@pytest.mark.parametrize("name", sorted(device_profiles()))
def test_profile_names_its_manual_and_what_was_assumed(name: str) -> None:
    doc = device_profiles()[name]
    assert doc["kind"] in KINDS, name
    assert str(doc["maker"]).strip() and str(doc["model"]).strip(), name
    source = doc["source"]
    assert isinstance(source, dict), name
    for key in ("document", "section", "url"):
        assert str(source.get(key, "")).strip(), f"{name}: source.{key}"
    for key in ("checked", "assumed"):
        notes = doc[key]
        assert isinstance(notes, list) and notes and all(str(n).strip() for n in notes), f"{name}: {key}"


def test_every_device_profile_has_a_case_laid_out_from_its_manual() -> None:
    from tests import test_profiles_inverters, test_profiles_meters, test_profiles_storage

    cases = test_profiles_meters.CASES + test_profiles_inverters.CASES + test_profiles_storage.CASES
    covered = {c.profile for c in cases if not c.partial}
    assert covered == set(device_profiles())


def test_check_lists_the_profiles_with_maker_kind_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert edge_main(["check", "--profiles"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name, doc in device_profiles().items():
        line = lines[name]
        source = doc["source"]
        assert isinstance(source, dict)
        for text in (doc["maker"], doc["kind"], source["document"]):
            assert str(text) in line, f"{name}: {text!r} missing from {line!r}"
    assert f"{len(device_profiles())} device profiles" in lines[str(len(device_profiles()))]


def test_check_without_config_or_profiles_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    assert edge_main(["check"]) == 2
    assert "-c FILE, or --profiles" in capsys.readouterr().err


def test_docs_list_every_device_profile() -> None:
    text = (PROFILES.parents[1] / "docs" / "devices.md").read_text(encoding="utf-8")
    missing = [name for name in device_profiles() if f"`{name}`" not in text]
    assert missing == [], f"docs/devices.md lacks a row for {missing}"
