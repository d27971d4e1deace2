"""Time-of-use electricity tariffs (分时电价) as configuration: tables with validity dates, the band of every
quarter hour by month (尖峰 sharp / 高峰 peak / 平段 flat / 低谷 valley), prices per band and an optional
demand charge (需量电价), for every park, one park or one enterprise of it.

The shipped analytics/tariffs.yaml holds examples with their source and confidence; a park's own file
(``PARKMON_TARIFFS``, or ``override``) is read before it, so its tables win over the examples. The file
format is in docs/indicators/energy-cost.md; the energy-cost indicator prices meters with these tables.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from parkmon.common.yamlfile import read_mapping

TARIFFS = Path(__file__).with_name("tariffs.yaml")
TARIFFS_ENV = "PARKMON_TARIFFS"  # a park's own tariff file, read before the shipped examples
Band = Literal["sharp", "peak", "flat", "valley"]
BANDS: tuple[Band, ...] = ("sharp", "peak", "flat", "valley")
BAND_ZH: dict[str, str] = {"sharp": "尖峰", "peak": "高峰", "flat": "平段", "valley": "低谷"}
SLOT_MIN = 15  # band boundaries sit on quarter hours (the spot market's interval); finer is refused
SLOTS = 24 * 60 // SLOT_MIN
_HHMM = r"^([01]\d|2[0-4]):(00|15|30|45)-([01]\d|2[0-4]):(00|15|30|45)$"


class TariffConfigError(ValueError):
    """A tariff file that cannot be used; the message names the file, the table and what to change."""


class TariffSeason(BaseModel):
    """The bands of some months: hour ranges "HH:MM-HH:MM" (China time, end exclusive, "22:00-02:00" wraps
    midnight); hours no band names are 平段 (flat), as the tariff notices say ("其余时段为平段")."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    months: list[Annotated[int, Field(ge=1, le=12)]]
    hours: dict[Band, list[Annotated[str, Field(pattern=_HHMM)]]]
    prices: dict[Band, Annotated[float, Field(ge=0)]] = {}  # yuan/kWh of these months (default: the table's)

    def slots(self) -> list[Band]:
        """The band of each quarter hour of the day (96); overlapping ranges are refused."""
        out: list[Band | None] = [None] * SLOTS
        for band, ranges in self.hours.items():
            for r in ranges:
                a, b = (int(x[:2]) * 60 + int(x[3:]) for x in r.split("-"))
                if a >= 24 * 60 or b > 24 * 60 or a == b:
                    raise ValueError(f"months {self.months}: {band} range {r!r} is empty or past 24:00")
                span = range(a // SLOT_MIN, b // SLOT_MIN) if b > a else \
                    [*range(a // SLOT_MIN, SLOTS), *range(b // SLOT_MIN)]
                for i in span:
                    if out[i] is not None:
                        raise ValueError(f"months {self.months}: {r!r} ({band}) overlaps {out[i]}; each hour has "
                                         "one band")
                    out[i] = band
        return [b or "flat" for b in out]


class TariffTable(BaseModel):
    """One tariff in force from ``valid_from`` to ``valid_to`` (exclusive; None: until replaced), for every
    park (``park`` None), one park, or one enterprise of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    name_zh: Annotated[str, Field(min_length=1)]
    name_en: str = ""
    park: str | None = None
    enterprise: str | None = None
    valid_from: date
    valid_to: date | None = None
    prices: dict[Band, Annotated[float, Field(ge=0)]]  # yuan/kWh (电度电价, all-in as billed)
    demand_charge: Annotated[float | None, Field(ge=0)] = None  # yuan per kW·month of maximum demand (需量电价)
    seasons: list[TariffSeason] = []  # a month no season names: every hour flat
    source: Annotated[str, Field(min_length=1)]
    confidence: str = ""

    @model_validator(mode="after")
    def _coherent(self) -> TariffTable:
        if self.enterprise and not self.park:
            raise ValueError(f"tariff {self.id}: an enterprise's tariff names its park too")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError(f"tariff {self.id}: valid_to {self.valid_to} is not after valid_from {self.valid_from}")
        months = [m for s in self.seasons for m in s.months]
        if len(months) != len(set(months)):
            raise ValueError(f"tariff {self.id}: a month is in two seasons ({sorted(months)})")
        for s in self.seasons:
            unpriced = sorted(b for b in set(s.slots()) if b not in s.prices and b not in self.prices)
            if unpriced:
                raise ValueError(f"tariff {self.id}: months {s.months} use {unpriced} with no price; add it to prices")
        if len(months) < 12 and "flat" not in self.prices:
            raise ValueError(f"tariff {self.id}: months no season names are flat all day; give prices.flat")
        return self

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def day_bands(self, month: int) -> list[tuple[Band, float]]:
        """The band and its price (yuan/kWh) of each quarter hour of a day (96) in ``month``."""
        season = next((s for s in self.seasons if month in s.months), None)
        if season is None:
            return [("flat", self.prices["flat"])] * SLOTS
        return [(b, season.prices[b] if b in season.prices else self.prices[b]) for b in season.slots()]

    def describe(self) -> dict[str, Any]:
        """What a result says of the table it priced with."""
        return {"id": self.id, "name_zh": self.name_zh, "name_en": self.name_en,
                "valid_from": self.valid_from.isoformat(),
                "valid_to": self.valid_to.isoformat() if self.valid_to else None, "source": self.source,
                "confidence": self.confidence}


class TariffSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tables: list[TariffTable]

    def table_for(self, park: str, enterprise: str | None, day: date) -> TariffTable | None:
        """The enterprise's own table in force that day, else the park's, else one for every park; among
        equals the first listed (a park's own file comes before the shipped examples)."""
        def rank(t: TariffTable) -> int:
            if t.enterprise is not None:
                return 0 if (t.park, t.enterprise) == (park, enterprise) else 9
            return 1 if t.park == park else 2 if t.park is None else 9

        found = sorted((rank(t), i) for i, t in enumerate(self.tables) if t.covers(day) and rank(t) < 9)
        return self.tables[found[0][1]] if found else None


def load_tariffs(override: str | Path | None = None) -> TariffSettings:
    """The tariff tables: ``override`` (else the file ``PARKMON_TARIFFS`` names) first, then the shipped
    analytics/tariffs.yaml. Each file has a ``tariffs:`` list."""
    first = override or os.environ.get(TARIFFS_ENV)
    paths = ([Path(first)] if first else []) + [TARIFFS]
    # read again only when a file changes: the board and the report ask often
    return _load(tuple((str(p), p.stat().st_mtime_ns if p.exists() else 0) for p in paths))


@cache
def _load(files: tuple[tuple[str, int], ...]) -> TariffSettings:
    tables: list[Any] = []
    for path, _mtime in files:
        doc = read_mapping(path, TariffConfigError, f"no such tariff file; check {TARIFFS_ENV}",
                           "a 'tariffs:' list (docs/indicators/energy-cost.md)").get("tariffs", [])
        if not isinstance(doc, list):
            raise TariffConfigError(f"{path}: tariffs must be a list of tables (id:, valid_from:, prices:, ...)")
        tables += doc
    try:
        return TariffSettings.model_validate({"tables": tables})
    except ValidationError as exc:
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TariffConfigError(f"{', '.join(f for f, _m in files)}: tariffs: {msgs}") from None
