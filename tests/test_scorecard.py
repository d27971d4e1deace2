"""一平台两中心六系统 scorecard: the judgement from facts (pure), with the reasons an element falls short."""

from __future__ import annotations

from analytics.indicators import scorecard as sc


def test_platform_centres_and_systems_say_why_they_fall_short() -> None:
    ok = sc.platform(sc.PlatformFacts(gateways=4, gateways_online=4, completeness_24h=1.0, dead_letters_24h=0))
    assert (ok.present, ok.live, ok.complete, ok.reasons) == (True, True, True, [])
    bad = sc.platform(sc.PlatformFacts(gateways=4, gateways_online=3, completeness_24h=0.95, dead_letters_24h=2))
    assert (bad.live, bad.complete) == (True, False)
    assert any("1 个网关离线" in r for r in bad.reasons) and any("95.0%" in r for r in bad.reasons)
    assert any("2 条报文被拒" in r for r in bad.reasons)
    none = sc.platform(sc.PlatformFacts(0, 0, None, 0))
    assert (none.present, none.live) == (False, False)

    ops = sc.operations(sc.OperationsFacts(api=True, live_board=False, alert_rules=0))
    assert ops.present and not ops.complete and len(ops.reasons) == 2

    fresh = sc.storage(sc.StorageFacts(readings=1, newest_reading_age_s=5, rollup_backlog=1, rollup_age_s=30))
    stale = sc.storage(sc.StorageFacts(readings=1, newest_reading_age_s=3600, rollup_backlog=0, rollup_age_s=None))
    assert fresh.complete and not stale.live and len(stale.reasons) == 2

    cov = {"system": "safety", "name_zh": "安全应急管理", "name_en": "Safety and emergency", "expected_devices": 6,
           "reporting_devices": 5, "enterprises_expected": 1, "enterprises_reporting": 1, "missing": ["e02/fa1"]}
    safety = sc.system(cov)
    assert (safety.present, safety.live, safety.complete) == (True, True, False)
    assert safety.reasons == ["1 项未上报 not reporting: e02/fa1"]
    empty = sc.system({**cov, "expected_devices": 0, "reporting_devices": 0, "enterprises_expected": 0,
                       "enterprises_reporting": 0, "missing": []})
    assert not empty.present and "nothing registered" in empty.reasons[0]
    assert sc.score([ok, bad, ops, fresh, safety]) == 2 / 5
