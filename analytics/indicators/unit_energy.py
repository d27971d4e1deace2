"""单位产品综合能耗 against the 标杆 (benchmark) and 基准 (baseline) levels, and the share of output
at benchmark (《节能技术改造实施方案》: 达到标杆水平的产能比例超过30%). Pure.

Unit energy = the enterprise's comprehensive energy of the month (kgce) / its production of the
product (t). Without sub-metering an enterprise's energy cannot be split between products, so a
value is given only where the enterprise made exactly one benchmarked product that month (said in
the result otherwise). At or below the benchmark: 标杆; above the baseline: 低于基准 (must be
upgraded or closed); between: 基准-标杆之间. Output at benchmark counts production tonnes (the
capacity actually used) of benchmarked products; the park's value is that share, against the 30 % target.
Products come from the month's economic figures (``ingest.store.records.economy``), energy from the meters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from analytics.indicators.base import Context, Indicator, IndicatorResult, Month, month_bounds
from analytics.indicators.comprehensive_energy import energy_figures
from analytics.targets import defaults_section
from ingest.store.records import economy

if TYPE_CHECKING:
    from ingest.store.base import Store

Level = Literal["benchmark", "between", "below_baseline"]
LEVEL_ZH = {"benchmark": "达到标杆", "between": "基准-标杆之间", "below_baseline": "未达基准"}


def benchmarks() -> dict[str, Any]:
    return defaults_section("unit_energy_benchmarks")


@dataclass(frozen=True)
class ProductResult:
    enterprise: str
    product: str
    quantity_t: float
    unit_energy: float | None  # kgce/t
    benchmark: float
    baseline: float
    level: Level | None
    note: str


def level(unit_energy: float, benchmark: float, baseline: float) -> Level:
    if unit_energy <= benchmark:
        return "benchmark"
    return "between" if unit_energy <= baseline else "below_baseline"


def assess(enterprise: str, tce: float | None, products: list[tuple[str, float]],
           table: dict[str, dict[str, float]]) -> list[ProductResult]:
    """``products``: (name, tonnes) the enterprise made in the month; only benchmarked ones are judged."""
    known = [(p, q) for p, q in products if p in table and q > 0]
    out = []
    for p, q in known:
        b, base = float(table[p]["benchmark"]), float(table[p]["baseline"])
        if tce is None:
            out.append(ProductResult(enterprise, p, q, None, b, base, None, "no energy figure for the month"))
        elif len(known) > 1:
            out.append(ProductResult(enterprise, p, q, None, b, base, None,
                                     "several benchmarked products: the energy cannot be split without sub-meters"))
        else:
            ue = tce * 1000 / q
            out.append(ProductResult(enterprise, p, q, ue, b, base, level(ue, b, base), ""))
    return out


def share_at_benchmark(results: list[ProductResult]) -> float | None:
    judged = [r for r in results if r.level is not None]
    total = sum(r.quantity_t for r in judged)
    return sum(r.quantity_t for r in judged if r.level == "benchmark") / total if total > 0 else None


class UnitEnergy(Indicator[Month]):
    key = "unit_product_energy"
    name_zh = "单位产品综合能耗(标杆/基准)"
    name_en = "Unit product energy vs benchmark and baseline"
    unit = "share of output at benchmark"
    product_unit = "kgce/t"  # each product's unit energy
    params = Month
    cli = "unit-energy"
    in_report = False  # the monthly report has no products table (yet)

    def feed(self, store: Store, park: str, p: Month, ctx: Context) -> IndicatorResult:
        ctx.park(store, park)
        start, end = month_bounds(p.month)
        figs = economy.figures(store, park, p.month, p.month)
        cfg = benchmarks()
        table: dict[str, dict[str, float]] = cfg["products"]
        results = []
        for f in figs:
            made = [(q["product"], q["quantity"]) for q in f["products"] if q["unit"] in ("t", "吨")]
            if not any(name in table for name, _q in made):
                continue
            tce, _c = energy_figures(store, park, int(start.timestamp() * 1000), int(end.timestamp() * 1000),
                                     f["enterprise"], ctx.factors)
            results += assess(f["enterprise"], tce.value, made, table)
        return self.make_result(
            share_at_benchmark(results), start, end, target=float(cfg["target_share_at_benchmark"]),
            completeness=sum(r.level is not None for r in results) / len(results) if results else 0.0,
            inputs={"park": park, "month": p.month, "source": cfg["source"],
                    "share_target_source": cfg["target_source"],
                    "products": [{**vars(r), "level_zh": LEVEL_ZH[r.level] if r.level else None} for r in results]},
            method="enterprise comprehensive energy of the month (kgce) / tonnes of its one benchmarked product")

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        i = result.inputs
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.product_unit,
                "month": i["month"], "source": i["source"], "products": i["products"],
                "share_at_benchmark": result.value, "share_target": result.target,
                "share_target_source": i["share_target_source"], "share_status": result.status,
                "method": result.method}
