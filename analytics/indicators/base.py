"""The indicator seam. An indicator is one module in this package: its pure computation (numbers in,
numbers out), its feed (what it reads from the store, once the park is checked) and a class derived from
:class:`Indicator`, registered with one line in :data:`INDICATORS`. The API (its routes and the generic
``/parks/{park}/indicators/{key}``), ``parkmon indicators``, the monthly report and the region overview
iterate the registry: the class says what its feed takes (:attr:`Indicator.params`, a pydantic model that
is the API's query and the command's options) and, where it differs from the default, how it shows in the
report and the overview. Whether a value meets its target is decided in one place: :func:`status_for`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, Self, TypeVar, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import to_jsonable_python

from parkmon.common.clock import CHINA
from parkmon.common.seams import resolve

if TYPE_CHECKING:
    from analytics.factors import Factors
    from analytics.targets import ShareSettings
    from ingest.store.base import Store

Status = Literal["met", "below_target", "no_target", "insufficient_data"]
Better = Literal["higher", "lower"]
TOLERANCE = 1e-9  # float noise must not fail a park (nor pass one)


def status_for(value: float | None, target: float | None, better: Better = "higher") -> Status:
    """THE met/below-target rule, for every indicator: met when the value reaches its target (at or above
    it, or at or below it where lower is better: PUE, water per 万元), within :data:`TOLERANCE`; no value
    means the period had too little data; no target, nothing to meet."""
    if value is None:
        return "insufficient_data"
    if target is None:
        return "no_target"
    met = value >= target - TOLERANCE if better == "higher" else value <= target + TOLERANCE
    return "met" if met else "below_target"


@dataclass(frozen=True)
class IndicatorResult:
    """What every indicator returns: a value a person can audit."""

    key: str
    name_zh: str
    name_en: str
    value: float | None
    unit: str
    period_start: datetime
    period_end: datetime
    target: float | None
    status: Status
    completeness: float  # share of the period's intervals with every input present, 0..1
    inputs: dict[str, Any] = field(default_factory=dict)  # the numbers used, for audit
    method: str = ""  # the rules applied, in words

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["period_start"] = self.period_start.isoformat()
        d["period_end"] = self.period_end.isoformat()
        return d


# --- the park and the period --------------------------------------------------------------------------------
class UnknownPark(LookupError):
    """The park is not registered (the API answers 404, the commands exit 2)."""


class _Parks(Protocol):
    def parks(self) -> Sequence[object]: ...


def require_park(store: _Parks, park: str) -> Any:
    """The registered park (``ingest.store.base.ParkInfo``), or :class:`UnknownPark`."""
    info = next((p for p in store.parks() if getattr(p, "key", None) == park), None)
    if info is None:
        raise UnknownPark(f"park {park!r} is not registered")
    return info


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """[start, end) of ``YYYY-MM`` in China time."""
    try:
        y, m = int(month[:4]), int(month[5:7])
        start = datetime(y, m, 1, tzinfo=CHINA)
    except (ValueError, IndexError):
        raise ValueError(f"month {month!r} is not YYYY-MM (e.g. 2026-10)") from None
    return start, datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=CHINA)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def why(exc: ValidationError) -> str:
    """Parameters refused, one line: ``name: what is wrong; ...`` (a validator's own words name it already)."""
    return "; ".join(str(e["ctx"]["error"]) if e["type"] == "value_error" else
                     ".".join(map(str, e["loc"])) + ": " + e["msg"] for e in exc.errors())


class Params(BaseModel):
    """What a feed takes besides the store and the park: the API's query parameters and the command's
    options (``--field-name``), with their defaults and descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(Params):
    """A period [start, end)."""

    start: AwareDatetime = Field(description="ISO 8601 with offset, e.g. 2025-06-01T00:00+08:00")
    end: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC),
                               description="ISO 8601 with offset (default: now)")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self

    @property
    def start_ms(self) -> int:
        return _ms(self.start)

    @property
    def end_ms(self) -> int:
        return _ms(self.end)


class Month(Params):
    """A China calendar month."""

    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM, China calendar")

    @field_validator("month")
    @classmethod
    def _real(cls, v: str) -> str:
        month_bounds(v)  # 2026-13 is refused here, with the way to write it
        return v


# --- what one request shares --------------------------------------------------------------------------------
T = TypeVar("T")


@dataclass
class Context:
    """What a feed may use besides the store and its parameters, and what one request (an API call, a
    report) computes once however many indicators need it: the park check, the counters read."""

    share_settings: ShareSettings | None = None  # the targets (API: app state; CLI: --targets)
    factors: Factors | None = None  # conversion and emission factors (CLI: --factors)
    live_board: bool = False  # the scorecard: this API serves the live board
    alert_rules_in_force: int | None = None  # the scorecard: rules the alert engine runs (None: the defaults)
    memo: dict[Hashable, Any] = field(default_factory=dict)

    def once(self, key: Hashable, compute: Callable[[], T]) -> T:
        if key not in self.memo:
            self.memo[key] = compute()
        return cast(T, self.memo[key])

    def park(self, store: _Parks, park: str) -> Any:
        """The registered park, checked once per request (:func:`require_park`)."""
        return self.once(("park", park), lambda: require_park(store, park))


# --- the indicator ------------------------------------------------------------------------------------------
P = TypeVar("P", bound=Params)


class Indicator(ABC, Generic[P]):
    """One indicator. A subclass sets the names, the unit, ``params`` and :meth:`feed`; the rest has defaults
    that suit an indicator over a period (a :class:`Span`) shown as one line."""

    key: ClassVar[str]
    name_zh: ClassVar[str]
    name_en: ClassVar[str]
    unit: ClassVar[str]
    better: ClassVar[Better] = "higher"  # which side of its target meets it (:func:`status_for`)
    params: type[P]
    companions: ClassVar[tuple[str, ...]] = ()  # computed from the same inputs and answered with it
    cli: ClassVar[str | None] = ""  # the `parkmon indicators` subcommand: "" its key in kebab case, None none
    in_report: ClassVar[bool] = True  # a section of the monthly / yearly report
    in_overview: ClassVar[bool] = False  # a column of the region overview

    @abstractmethod
    def feed(self, store: Store, park: str, p: P, ctx: Context) -> IndicatorResult:
        """Check the park (``ctx.park``), read the inputs from the store, compute. Refusals:
        :class:`UnknownPark`, ``ValueError`` (a wrong input), ``KeyError`` (a factor the period has none of)."""

    @property
    def slug(self) -> str:
        return self.key.replace("_", "-")

    @property
    def command(self) -> str | None:
        return self.slug if self.cli == "" else self.cli

    def make_result(self, value: float | None, start: datetime, end: datetime, *, target: float | None = None,
                    completeness: float = 1.0, inputs: dict[str, Any] | None = None, method: str = "",
                    status: Status | None = None) -> IndicatorResult:
        """A result of this indicator, its status by :func:`status_for` (``status``: already judged so,
        e.g. on the unrounded value)."""
        return IndicatorResult(self.key, self.name_zh, self.name_en, value, self.unit, start, end, target,
                               status or status_for(value, target, self.better), completeness, inputs or {}, method)

    # the API route and the command
    def answer(self, store: Store, park: str, p: P, ctx: Context) -> dict[str, Any]:
        """What the indicator's API route and its command give: :meth:`view` of the result; with companions,
        each one's result under its key."""
        result = self.feed(store, park, p, ctx)
        if not self.companions:
            return self.view(result)
        return {self.key: result.to_json(), **{k: load(k).feed(store, park, p, ctx).to_json()
                                              for k in self.companions}}

    def view(self, result: IndicatorResult) -> dict[str, Any]:
        return result.to_json()

    # the report and the overview
    def period_params(self, start: datetime, end: datetime, period: str | None) -> P | None:
        """The parameters for a report's month or year (``period``: YYYY-MM or YYYY) or the overview's
        period (``period`` None); None: the indicator has no figure for it."""
        if issubclass(self.params, Span):
            return self.params.model_validate({"start": start, "end": end})
        if issubclass(self.params, Month):
            return self.params.model_validate({"month": period}) if period and len(period) == 7 else None
        try:
            return self.params()
        except ValidationError:
            return None

    def for_report(self, store: Store, park: str, start: datetime, end: datetime, period: str,
                   ctx: Context) -> IndicatorResult | None:
        p = self.period_params(start, end, period)
        return None if p is None else self.feed(store, park, p, ctx)

    def report_section(self, result: IndicatorResult | None, report: dict[str, Any]) -> None:
        """Put the figure into the report (the JSON the Excel and PDF are written from)."""
        if result is not None:
            report[self.key] = result.to_json()

    def summary_rows(self, report: dict[str, Any]) -> list[list[Any]] | None:
        """The report's summary lines; None: the default line (analytics.report.rows.result_row)."""
        return None

    def overview_fields(self, result: IndicatorResult) -> dict[str, Any]:
        """This indicator's fields in a park's line of the region overview."""
        return {self.key: result.value}

    def overview_region(self, results: list[IndicatorResult]) -> dict[str, Any]:
        """Region-wide fields of the overview, from every park's result."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What the generic indicators listing says of it."""
        params = {}
        for name, f in self.params.model_fields.items():
            default = None if f.is_required() or f.default_factory is not None else f.default
            params[name] = {"required": f.is_required(), "default": to_jsonable_python(default),
                            "description": f.description or ""}
        return {"key": self.key, "name_zh": self.name_zh, "name_en": self.name_en, "unit": self.unit,
                "better": self.better, "params": params}


# key -> "module:Class"; adding an indicator is one module and one line here. The order is the report's.
INDICATORS: dict[str, str] = {
    "new_energy_share": "analytics.indicators.new_energy_share:NewEnergyShare",
    "comprehensive_energy": "analytics.indicators.comprehensive_energy:ComprehensiveEnergy",
    "carbon_per_tce": "analytics.indicators.comprehensive_energy:CarbonPerTce",
    "key_energy_users": "analytics.indicators.key_energy_users:KeyEnergyUsers",
    "water_intensity": "analytics.indicators.intensity:WaterIntensity",
    "energy_intensity": "analytics.indicators.intensity:EnergyIntensity",
    "digitalisation_rate": "analytics.indicators.digitalisation:Digitalisation",
    "pollutant_compliance": "analytics.indicators.pollutant_compliance:PollutantCompliance",
    "pue": "analytics.indicators.pue:Pue",
    "unit_product_energy": "analytics.indicators.unit_energy:UnitEnergy",
    "electricity_activity_index": "analytics.indicators.activity_index:ElectricityActivityIndex",
    "energy_cost": "analytics.indicators.energy_cost:EnergyCost",
    "meter_balance": "analytics.indicators.meter_balance:MeterBalance",
    "energy_monitoring": "analytics.indicators.energy_monitoring:EnergyMonitoring",
    "zero_carbon_park": "analytics.indicators.zc_park:ZeroCarbonPark",
    "zero_carbon_core": "analytics.indicators.zc_core:ZeroCarbonCore",
    "clean_energy_share": "analytics.indicators.zc_clean_energy:CleanEnergyShare",
    "solid_waste_utilisation": "analytics.indicators.zc_solid_waste:SolidWasteUtilisation",
    "waste_heat_utilisation": "analytics.indicators.zc_waste_heat:WasteHeatUtilisation",
    "water_reuse_rate": "analytics.indicators.zc_water_reuse:WaterReuseRate",
    "smart_park_scorecard": "analytics.indicators.scorecard:Scorecard",
}


def load(key: str) -> Indicator[Any]:
    """An instance of the indicator registered under ``key``."""
    if key not in INDICATORS:
        raise KeyError(f"no indicator {key!r}; known: {', '.join(sorted(INDICATORS))} (analytics.indicators.base)")
    ind: Indicator[Any] = resolve(INDICATORS[key])()
    return ind


def registered() -> list[Indicator[Any]]:
    """Every registered indicator, in the registry's order."""
    return [load(k) for k in INDICATORS]
