"""数据中心PUE — power usage effectiveness of a data centre over a period: the facility's electricity
use over its IT equipment's (GB 40879 calls the annual figure 电能比).

Facility use = grid import + on-site renewable generation − export (what the site used, as in the
comprehensive energy); IT use = the IT-load meters (UPS output, metric ``elec.it.energy``). Target
1.3 (《节能技术改造实施方案》: "数据中心PUE值达到1.3"; national hub nodes 1.25, a configurable
choice). Lower is better. Every enterprise with IT meters is a data centre; the park's value is its
worst data centre's (met when every one is at or below the target).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, status_for
from analytics.meters import totals_by_enterprise

if TYPE_CHECKING:
    from ingest.store.base import Store

TARGET = 1.3
SOURCE = "《节能技术改造实施方案》: 数据中心PUE值达到1.3"
METHOD = "(grid import + on-site RE generation − export) / IT-load meters; met at or below target"
CARRIERS = {"imp": ("elec.import.energy",), "exp": ("elec.export.energy",),
            "gen": ("pv.generation.energy", "wind.generation.energy"), "it": ("elec.it.energy",)}


def pue(facility_kwh: float | None, it_kwh: float | None) -> float | None:
    """None without IT energy to divide by; a value below 1 means the meters disagree and is refused."""
    if facility_kwh is None or it_kwh is None or it_kwh <= 0:
        return None
    value = facility_kwh / it_kwh
    if value < 1.0:
        raise ValueError(f"PUE {value:.3f} < 1: the IT meters counted more ({it_kwh:.1f} kWh) than the site used "
                         f"({facility_kwh:.1f} kWh); check which meters are tagged elec.it.energy")
    return value


class PueParams(Span):
    target: Annotated[float, Field(ge=1.0, le=3.0, description="1.3 by default; 1.25 for hub nodes")] = TARGET


class Pue(Indicator[PueParams]):
    key = "pue"
    name_zh = "数据中心电能使用效率(PUE)"
    name_en = "Data-centre PUE"
    unit = "ratio (facility / IT)"
    better = "lower"
    params = PueParams

    def feed(self, store: Store, park: str, p: PueParams, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        with_it = {q.enterprise for q in store.points(park, metrics=["elec.it.energy"])}
        centres = []
        if with_it:  # one read of every enterprise's counters
            for ent, (t, rep) in totals_by_enterprise(store, park, CARRIERS, p.start_ms, p.end_ms).items():
                if ent not in with_it:
                    continue
                facility = None if rep["uncovered"] else t["imp"] + t["gen"] - t["exp"]
                try:
                    ratio = pue(facility, None if rep["uncovered"] else t["it"])
                except ValueError as exc:
                    raise ValueError(f"{ent}: {exc}") from None
                centres.append({"enterprise": ent, "value": None if ratio is None else round(ratio, 4),
                                "target": p.target, "status": status_for(ratio, p.target, self.better),
                                "facility_kwh": facility, "it_kwh": t["it"],
                                "meters_not_covering_period": rep["uncovered"]})
        judged = [c["value"] for c in centres if c["value"] is not None]
        return self.make_result(max(judged) if judged else None, p.start, p.end, target=p.target,
                                completeness=len(judged) / len(centres) if centres else 0.0,
                                inputs={"park": park, "source": SOURCE, "data_centres": centres}, method=METHOD)

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "source": SOURCE,
                "period_start": result.period_start.isoformat(), "period_end": result.period_end.isoformat(),
                "method": result.method, "data_centres": result.inputs["data_centres"]}

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        report["data_centres"] = [] if result is None else result.inputs["data_centres"]

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        from analytics.report.rows import STATUS_ZH, num

        return [[f"数据中心PUE {dc['enterprise']}", num(dc["value"], 3), num(dc["target"], 2), STATUS_ZH[dc["status"]],
                 ""] for dc in report["data_centres"]]
