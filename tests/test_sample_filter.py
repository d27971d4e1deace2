"""Counter reset / rollover flags and report-by-exception, on the agent side."""

from __future__ import annotations

from edge_agent.config import parse_config
from edge_agent.sample_filter import SampleFilter
from parkmon.common import quality
from parkmon.common.quality import Reason


def _filter(**point: object) -> SampleFilter:
    p: dict[str, object] = {"name": "p", "address": 0, "type": "uint32", "scale": 0.01}
    p.update(point)
    cfg = parse_config({"gateway": {"park": "p", "enterprise": "e", "id": "g"},
                        "publish": {"heartbeat_s": 60}, "devices": [{"id": "m", "points": [p]}]})
    return SampleFilter(cfg)


def test_counter_going_back_is_a_reset_and_keeps_its_raw_value() -> None:
    f = _filter(metric="elec.import.energy")
    out = f.apply([("m.p", 1000, 500.0, 0), ("m.p", 2000, 501.0, 0), ("m.p", 3000, 3.0, 0), ("m.p", 4000, 4.0, 0)])
    assert [(v, q) for _, _, v, q in out] == [
        (500.0, 0), (501.0, 0), (3.0, quality.uncertain(Reason.COUNTER_RESET)), (4.0, 0)]
    assert f.resets == 1


def test_counter_wrapping_at_the_register_top_is_a_rollover() -> None:
    # uint32 x 0.01: the register tops out at 42 949 672.95 kWh; 42 949 000 -> 5 is a wrap, not a reset
    f = _filter(metric="elec.import.energy")
    out = f.apply([("m.p", 1000, 42_949_000.0, 0), ("m.p", 2000, 5.0, 0)])
    assert out[1][3] == quality.uncertain(Reason.COUNTER_ROLLOVER)
    assert f.rollovers == 1 and f.resets == 0


def test_instant_values_are_not_counters() -> None:
    f = _filter(metric="elec.active_power")
    out = f.apply([("m.p", 1000, 500.0, 0), ("m.p", 2000, 100.0, 0)])
    assert [q for *_, q in out] == [0, 0]


def test_deadband_sends_changes_quality_changes_and_heartbeats() -> None:
    f = _filter(metric="elec.active_power", deadband=5.0)
    bad = quality.bad(Reason.COMM_FAILURE)
    samples = [
        ("m.p", 0, 100.0, 0),        # first: sent
        ("m.p", 1_000, 103.0, 0),    # moved 3 < 5: held back
        ("m.p", 2_000, 106.0, 0),    # moved 6 from the last sent: sent
        ("m.p", 3_000, None, bad),   # quality changed: sent
        ("m.p", 4_000, 106.0, 0),    # good again: sent
        ("m.p", 30_000, 107.0, 0),   # small move: held back
        ("m.p", 64_000, 107.0, 0),   # 60 s since the last sent: heartbeat
    ]
    sent = [ts for _, ts, _, _ in f.apply(samples)]
    assert sent == [0, 2_000, 3_000, 4_000, 64_000]
    assert f.suppressed == 2
