"""Alert rules: configuration (YAML or the API), validated with errors that say which rule and field.

A rule watches points chosen by scope (park, enterprise, device, device kind) and metric:

- ``threshold``: the value above (``op: ">"``) or below (``"<"``) ``threshold`` for ``duration_s``; it
  resolves when the value is back past ``threshold ∓ hysteresis`` (no flapping at the line);
- ``rate``: the value changing faster than ``threshold`` per minute (either way, or ``op``) for ``duration_s``;
- ``stale``: a point (or a gateway) silent for more than ``threshold`` seconds;
- ``quality``: samples flagged bad, or a counter reset, for ``duration_s``;
- ``pollutant``: a validated hourly average (HJ 212 rules, reference O2) over its permit limit;
- ``indicator``: an indicator of the registry (``analytics.indicators.base.INDICATORS``) below its target
  over the year so far (e.g. the new-energy share below its trajectory; an indicator without a target
  never fires), an enterprise crossing the key energy user line (``key_energy_user``: ``threshold``
  tce/yr, annualised), or hazardous waste stored ``threshold`` days or more (``hazwaste_storage``: the
  oldest tonne; the law's limit is a year) or over the enterprise's permitted tonnage;
- ``balance``: a meter balance of the registry (a main meter and its ``sum_of`` sub-meters) out by more
  than ``threshold`` % of the main meter (none: the carrier's limit, defaults.yaml ``meter_balance``;
  ``op: "both"`` either way, ``">"`` losses only, ``"<"`` excess only) for ``duration_s``, judged hour by
  hour (analytics/alerts/balance.py); hours where both the main meter and the sum counted less than
  ``min_amount`` are not judged (a near-idle hour's % says little). ``metric`` picks one carrier.

Samples in maintenance or calibration (HJ 212 M / C flags) do not trip threshold, rate or pollutant
rules (``suppress_reasons``); a stale or quality rule is what watches the instrument itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from analytics.indicators.base import INDICATORS
from parkmon.common import quality
from parkmon.common.metrics import METRICS

Kind = Literal["threshold", "rate", "stale", "quality", "pollutant", "indicator", "balance"]
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
SEVERITY_ZH = {"info": "提示", "warning": "预警", "critical": "严重"}
DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
# judged by the engine enterprise by enterprise, not one park figure against its target
SPECIAL_INDICATORS = ("key_energy_user", "hazwaste_storage")


def one_level_up(severity: str) -> Severity:
    """Where an unacknowledged alert escalates to: the next severity (critical stays critical)."""
    return SEVERITIES[min(len(SEVERITIES) - 1, SEVERITIES.index(severity) + 1)]


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    kind: Kind
    name_zh: Annotated[str, Field(min_length=1)]
    name_en: Annotated[str, Field(min_length=1)]
    metric: str | None = None  # threshold / rate / quality / pollutant (stale: None watches gateways)
    park: str | None = None  # scope: None = every park
    enterprise: str | None = None
    device: str | None = None
    device_kind: str | None = None  # registry kind, e.g. pressure_vessel
    op: Literal[">", "<", "both"] = ">"
    threshold: float | None = None
    hysteresis: Annotated[float, Field(ge=0)] = 0.0
    duration_s: Annotated[float, Field(ge=0)] = 0.0
    severity: Severity = "warning"
    escalate_after_s: Annotated[float | None, Field(gt=0)] = None  # unacknowledged this long: one level up
    system: str = "safety"  # 六系统 key of the system it belongs to
    indicator: str | None = None  # an INDICATORS key, or one of SPECIAL_INDICATORS
    suppress_reasons: tuple[str, ...] = ("maintenance", "calibration")
    source: str = ""  # where the threshold comes from (a standard, a permit, the operator)
    enabled: bool = True
    except_parks: tuple[str, ...] = ()  # parks whose own rule of the same id replaces this one
    min_amount: Annotated[float, Field(ge=0)] = 0.0  # balance rules: smallest hour judged (kWh, m³, ...)

    @model_validator(mode="after")
    def _coherent(self) -> Rule:
        needs_metric = self.kind in ("threshold", "rate", "quality", "pollutant")
        if needs_metric and not self.metric:
            raise ValueError(f"a {self.kind} rule needs a metric")
        if self.metric and self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r} (parkmon.common.metrics lists them)")
        if self.kind in ("threshold", "rate", "stale") and self.threshold is None:
            raise ValueError(f"a {self.kind} rule needs a threshold"
                             + (" (seconds of silence)" if self.kind == "stale" else ""))
        if self.kind == "indicator" or self.indicator is not None:
            _check_indicator(self.indicator)
        if self.indicator == "key_energy_user" and (self.threshold or 0.0) < 0:
            raise ValueError(f"a key_energy_user threshold is tce a year, not {self.threshold}")
        known = {r.name.lower() for r in quality.Reason}
        bad = [r for r in self.suppress_reasons if r not in known]
        if bad:
            raise ValueError(f"suppress_reasons {bad} unknown; known: {', '.join(sorted(known))}")
        return self

    def suppressed(self, q: int) -> bool:
        """A sample in maintenance or calibration (or another listed reason) does not trip this rule."""
        return quality.reason(q).name.lower() in self.suppress_reasons

    def applies(self, park: str, enterprise: str, device: str, device_kind: str, metric: str | None) -> bool:
        return (self.enabled and (self.metric is None or self.metric == metric)
                and self.park in (None, park) and park not in self.except_parks
                and self.enterprise in (None, enterprise)
                and self.device in (None, device) and self.device_kind in (None, device_kind))

    def over(self, v: float) -> bool:
        """The alarm condition (threshold rules)."""
        t = float(self.threshold or 0.0)
        return v > t if self.op == ">" else v < t if self.op == "<" else abs(v) > t

    def clear(self, v: float) -> bool:
        """Back inside by the hysteresis: the condition for resolving."""
        t, h = float(self.threshold or 0.0), self.hysteresis
        return v <= t - h if self.op == ">" else v >= t + h if self.op == "<" else abs(v) <= t - h


def _check_indicator(key: str | None) -> None:
    known = [*INDICATORS, *SPECIAL_INDICATORS]
    if key not in known:
        said = "names its indicator" if key is None else f"names an unknown indicator {key!r}"
        raise ValueError(f"an indicator rule {said}; known: {', '.join(known)}")
    if key in INDICATORS:
        from analytics.indicators.base import load

        # the engine judges the year so far: an indicator with no figure for it would never fire
        year = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
        if load(key).period_params(*year, None) is None:
            raise ValueError(f"indicator {key!r} has no figure for the year so far (it is computed per month or "
                             "day), which an indicator rule judges")


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[Rule]

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for r in self.rules:
            if r.id in seen:
                raise ValueError(f"rule id {r.id!r} is used twice")
            seen.add(r.id)
        return self


def parse_rules(data: Any, where: str = "rules") -> list[Rule]:
    """Rules from parsed YAML/JSON; the error names the rule (by position and id) and the field."""
    try:
        return RuleSet.model_validate(data).rules
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = list(e["loc"])
            if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
                rules = data.get("rules") if isinstance(data, dict) else None
                rid = rules[loc[1]].get("id", "?") if isinstance(rules, list) and isinstance(rules[loc[1]], dict) \
                    else "?"
                loc = [f"rule {loc[1] + 1} ({rid})", *loc[2:]]
            lines.append(f"{where}: {'.'.join(map(str, loc))}: {e['msg']}")
        raise ValueError("\n".join(lines)) from None


def load_rules(path: str | Path | None = None) -> list[Rule]:
    p = Path(path) if path else DEFAULT_RULES
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{p}: cannot read alert rules: {exc}") from None
    return parse_rules(data, str(p))
