"""Alert rules and their state machine, by hand: duration, hysteresis, late data, maintenance flags,
rate of change, silence, quality; the messages say what, where, how far over and since when."""

from __future__ import annotations

import pytest

from analytics.alerts.messages import render
from analytics.alerts.rules import load_rules, parse_rules
from analytics.alerts.state import Tracker
from parkmon.common import quality

S = 1000
MAINT = quality.uncertain(quality.Reason.MAINTENANCE)
BAD = quality.bad(quality.Reason.COMM_FAILURE)


def _rule(**kw: object):  # type: ignore[no-untyped-def]
    base = {"id": "r", "kind": "threshold", "metric": "safety.pressure", "name_zh": "超压", "name_en": "over",
            "threshold": 1.6, "hysteresis": 0.1, "duration_s": 30}
    return parse_rules({"rules": [{**base, **kw}]})[0]


def test_threshold_needs_its_duration_and_resolves_past_the_hysteresis() -> None:
    tr = Tracker(_rule(), "p/e/v1")
    assert tr.observe(0, 1.7, 0) is None and tr.state == "pending"  # over, but not for 30 s yet
    assert tr.observe(20 * S, 1.65, 0) is None
    fired = tr.observe(30 * S, 1.8, 0)
    assert fired is not None and fired.to == "firing" and fired.since_ms == 0 and fired.peak == 1.8
    assert tr.observe(40 * S, 1.55, 0) is None  # under 1.6 but not under 1.6 - 0.1: still firing
    assert tr.observe(50 * S, 1.9, 0) is None and tr.peak == 1.9
    done = tr.observe(60 * S, 1.49, 0)
    assert done is not None and done.to == "resolved" and done.peak == 1.9 and done.since_ms == 0
    # a blip shorter than the duration says nothing
    assert tr.observe(70 * S, 1.7, 0) is None and tr.observe(80 * S, 1.5, 0) is None and tr.state == "ok"


def test_late_maintenance_and_bad_samples_move_nothing() -> None:
    tr = Tracker(_rule(duration_s=0), "p/e/v1")
    assert tr.observe(100 * S, 1.0, 0) is None
    assert tr.observe(50 * S, 5.0, 0) is None  # late: older than what was seen
    assert tr.observe(110 * S, 5.0, MAINT) is None  # maintenance (HJ 212 M): not the process
    assert tr.observe(120 * S, 5.0, BAD) is None
    assert tr.state == "ok"
    assert tr.observe(130 * S, 5.0, 0) is not None  # a good sample over the line fires at once


def test_rate_of_change_silence_and_quality() -> None:
    rate = Tracker(_rule(kind="rate", threshold=0.5, hysteresis=0.1, duration_s=0), "p/e/v1")
    assert rate.observe(0, 1.0, 0) is None
    assert rate.observe(60 * S, 1.3, 0) is None  # 0.3 MPa/min
    fired = rate.observe(120 * S, 2.0, 0)  # 0.7 MPa/min
    assert fired is not None and fired.value == pytest.approx(0.7)
    assert rate.observe(180 * S, 2.1, 0) is not None  # 0.1/min <= 0.5 - 0.1: resolved
    stale = Tracker(_rule(kind="stale", metric=None, threshold=300), "p/e/gw")
    assert stale.silent(1000 * S, 800 * S) is None  # 200 s quiet
    t = stale.silent(1200 * S, 800 * S)
    assert t is not None and t.to == "firing" and t.since_ms == 800 * S
    assert stale.silent(1300 * S, 800 * S) is None  # still silent: no second alert
    assert stale.silent(1400 * S, 1390 * S) is not None and stale.state == "ok"
    q = Tracker(_rule(kind="quality", metric="elec.import.energy", duration_s=60, threshold=None), "p/e/m")
    assert q.observe(0, None, BAD) is None
    assert q.observe(60 * S, None, BAD) is not None  # bad for a minute
    assert q.observe(61 * S, 10.0, 0) is not None and q.state == "ok"
    reset = Tracker(_rule(kind="quality", metric="elec.import.energy", duration_s=0, threshold=None), "p/e/m")
    assert reset.observe(0, 0.0, quality.uncertain(quality.Reason.COUNTER_RESET)) is not None


def test_rules_say_what_is_wrong() -> None:
    assert len(load_rules()) >= 10  # the defaults load
    with pytest.raises(ValueError, match=r"rule 1 \(x\).*threshold rule needs a threshold"):
        parse_rules({"rules": [{"id": "x", "kind": "threshold", "metric": "safety.pressure", "name_zh": "a",
                                "name_en": "a"}]})
    with pytest.raises(ValueError, match=r"unknown metric .safety\.presure."):
        _rule(metric="safety.presure")
    with pytest.raises(ValueError, match="used twice"):
        parse_rules({"rules": [{"id": "a", "kind": "stale", "threshold": 1, "name_zh": "a", "name_en": "a"}] * 2})


def test_message_in_chinese_with_english() -> None:
    a = {"rule_id": "vessel_over", "kind": "threshold", "severity": "critical", "name_zh": "压力容器超压",
         "name_en": "Vessel over pressure", "park": "demo", "park_name": "示范园区", "enterprise": "e01",
         "device": "v1", "metric": "safety.pressure", "label_zh": "压力", "unit": "MPa", "value": 1.85,
         "threshold": 1.6, "peak": 1.91, "since_ms": 1_795_363_200_000, "op": ">", "source": "设计压力"}
    m = render(a, "firing", 1_795_363_230_000)
    assert m["title_zh"] == "【严重·告警】压力容器超压｜示范园区 / e01 / v1"
    assert "压力 1.85 MPa，超过上限 1.6 MPa（差 0.25 MPa，15.6%）" in m["text_zh"]
    assert "自 2026-11-23 00:00:00 起持续 30秒" in m["text_zh"] and "依据 设计压力" in m["text_zh"]
    assert "above the limit 1.6 MPa" in m["text_en"]
    r = render({**a, "value": 1.4}, "resolved", 1_795_363_500_000)
    assert "已恢复正常（1.4 MPa），告警持续 5分0秒，峰值 1.91 MPa" in r["text_zh"]


def test_indicator_rules_name_an_indicator_of_the_registry() -> None:
    def rule(**kw: object) -> object:
        return parse_rules({"rules": [{"id": "i", "kind": "indicator", "name_zh": "a", "name_en": "a", **kw}]})[0]

    assert rule(indicator="pue") and rule(indicator="new_energy_share") and rule(indicator="hazwaste_storage")
    with pytest.raises(ValueError, match=r"unknown indicator 'pue2'; known: new_energy_share, .*pue.*key_energy_user"):
        rule(indicator="pue2")
    with pytest.raises(ValueError, match="names its indicator; known: new_energy_share"):
        rule()
    # judged on the year so far: an indicator computed per month would never fire
    with pytest.raises(ValueError, match="'water_intensity' has no figure for the year so far"):
        rule(indicator="water_intensity")
    with pytest.raises(ValueError, match="key_energy_user threshold is tce a year, not -1"):
        rule(indicator="key_energy_user", threshold=-1)
