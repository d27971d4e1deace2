"""清洁能源消费占比 — the clean-energy share of all energy (tce), a guiding indicator of the national
zero-carbon park scheme (发改环资〔2025〕910号, target ≥90 % [V2]; analytics/zero_carbon.py).

Numerator: the renewable electricity the park used, as the new-energy share counts it (its NES numerator:
on-site RE used directly and through storage, plus the green-power register's contracts and certificates,
less certificates sold), in tce by the electricity coefficient; denominator: the park's comprehensive
energy (GB/T 2589, every carrier). Both reused: :func:`new_energy_share.park_share_once` and
:func:`comprehensive_energy.energy_figures`, combined by :func:`comprehensive_energy.clean_energy_share`.
Kept apart from the electricity-only new-energy share, whose denominator is electricity alone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from analytics.factors import load_factors
from analytics.indicators.base import Context, Indicator, IndicatorResult, Span, status_for
from analytics.indicators.comprehensive_energy import ElectricityMethod, clean_energy_share, energy_figures
from analytics.indicators.new_energy_share import park_share_once
from analytics.zero_carbon import load_zero_carbon_settings

if TYPE_CHECKING:
    from ingest.store.base import Store

METHOD = ("renewable electricity used (the new-energy share's numerator: on-site RE used, green power of the "
          "register, less certificates sold) × the electricity coefficient / comprehensive energy (tce, GB/T 2589)")


class CleanParams(Span):
    electricity_method: Annotated[ElectricityMethod, Field(
        description="当量值 equivalent (0.1229 kgce/kWh) or 等价值 equal_value (the year's coal rate), "
                    "for the numerator and the comprehensive energy alike")] = "equivalent"


class CleanEnergyShare(Indicator[CleanParams]):
    key = "clean_energy_share"
    name_zh = "清洁能源消费占比"
    name_en = "Clean-energy share of all energy"
    unit = "ratio"
    params = CleanParams
    in_report = False  # in the report's zero-carbon section (zc_park)

    def feed(self, store: Store, park: str, p: CleanParams, ctx: Context) -> IndicatorResult:
        info = ctx.park(store, park)
        return ctx.once(("clean_energy_share", park, p), lambda: clean_of(
            store, info, p.start_ms, p.end_ms, ctx, p.electricity_method))


def clean_of(store: Store, info: Any, start_ms: int, end_ms: int, ctx: Context,
             electricity_method: ElectricityMethod = "equivalent") -> IndicatorResult:
    """The clean-energy share of a park already checked (``info``: its ParkInfo) over [start, end)."""
    park = str(info.key)
    guiding = load_zero_carbon_settings().guiding["clean_energy_share"]
    share = park_share_once(store, info, start_ms, end_ms, ctx)
    tce, _carbon = energy_figures(store, park, start_ms, end_ms, factors=ctx.factors,
                                  electricity_method=electricity_method)
    f = (ctx.factors or load_factors()).tce
    k = f.electricity_equivalent if electricity_method == "equivalent" else f.electricity_equal_value
    re_kwh = share.inputs.get("numerator") if share.value is not None else None
    value = clean_energy_share(re_kwh, tce.value, k.value)
    start = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    end = datetime.fromtimestamp(end_ms / 1000, tz=UTC)
    return CleanEnergyShare().make_result(
        None if value is None else round(value, 6), start, end, target=guiding.target,
        completeness=min(share.completeness, tce.completeness),
        inputs={"park": park, "re_used_kwh": re_kwh, "kgce_per_kwh": k.value, "kgce_source": k.source,
                "comprehensive_energy_tce": tce.value, "green_register": share.inputs.get("green_register"),
                "share_source": share.inputs.get("source"), "tce_source": tce.inputs.get("source"),
                "target_source": guiding.source, "target_confidence": guiding.confidence},
        method=METHOD, status=status_for(value, guiding.target))
