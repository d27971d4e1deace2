"""HJ 212-2017 emissions arithmetic: validity, data flags, reference O2, standard-state flow, emission
rate and amounts, and the minute / hour / day records a data logger sends. Pure functions.

This module imports only the standard library and :mod:`parkmon` (no server libraries): the edge agent's
HJ 212 forwarder imports it on the gateway to act as a data logger for the meters it polls, and the
platform's pollutant compliance (``analytics/indicators/pollutant_compliance.py``) and its hourly pollutant
alerts use the same functions, so each rule lives here once. Sources: domain.md §3 (HJ 212-2017 App. C
notes on data flags, App. D validity and emission formulas); docs/indicators/emissions.md says the rules
and parkmon's choices where the standard is silent.

Samples are ``(ts_ms, value or None, quality)`` (``parkmon/common/quality.py``); a sample is *normal* (HJ 212
flag N) when its quality class is good and it has a value. Rules, with their defaults:

- minute: mean of the normal samples, valid with at least 12 of them (flue gas: App. D, ≤ 5 s spacing;
  wastewater: App. D's 10-minute value of n ≥ 120 time slices of ≥ 5 s, i.e. 12 slices a minute);
- hour: mean of its valid minutes, valid with at least 45; day (China calendar): mean of its valid
  hours, valid with at least 20;
- data flag of a minute / hour / day (App. C notes): flue gas N when ≥ 75 % of the underlying values
  are normal, else D; wastewater: any abnormal value makes the aggregate abnormal (it takes the most
  frequent abnormal letter). parkmon adds: the count rule must hold too, and a value is *valid* exactly
  when its flag is N;
- Avg / Min / Max of a period: the mean / least / greatest of the values it is made of (a minute: its
  normal samples; an hour: its valid minutes' means; a day: its valid hours' means); an invalid period
  still shows the means of all its minutes / hours, under its flag;
- reference O2 (App. D): C_折 = C × (21 − O2_ref) / (21 − O2), minute by minute with the same minute's O2;
- standard dry flow (App. D): Qsn = Qs × 273 / (273 + t) × (Ba + Ps) / 101325 × (1 − Xsw);
- emission rate Gh = C × Qsnh × 10⁻⁶ kg/h; amounts minute by minute: flue gas C × Qsn × 60 s × 10⁻⁶ kg
  and Qsn × 60 s m³; wastewater D = Q[L/s] × 60 s × 10⁻³ m³, G = D × C × 10⁻³ kg; a period's amount
  (HJ 212 ``Cou``) is the sum over its minutes where both the concentration and the flow are valid.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from parkmon.common import quality
from parkmon.common.clock import CHINA_OFFSET_MS, DAY_MS, HOUR_MS, MINUTE_MS
from parkmon.common.hj212 import Record
from parkmon.common.hj212_codes import CN_DAY, CN_HOUR, CN_MINUTE, DATA_FLAGS, ST_AIR_SOURCE, ST_WATER_SOURCE

Kind = Literal["gas", "water"]  # flue gas (CEMS, ST 31) or wastewater (ST 32)
# one series' values: (ts_ms, value or None, parkmon quality); a wire Sample without its point
Reading = tuple[int, float | None, int]

DAY_OFFSET_MS = CHINA_OFFSET_MS  # HJ 212 days are the logger's Beijing-time days (UTC+8)
MIN_SAMPLES = 12  # a valid minute: ≥ 12 normal samples (App. D)
MIN_MINUTES = 45  # a valid hour: ≥ 45 valid minutes (App. D)
MIN_HOURS = 20  # a valid day: ≥ 20 valid hours (App. D)
NORMAL_SHARE = (3, 4)  # flue gas: N when ≥ 3/4 of the underlying values are normal (App. C notes)
STANDARD_PRESSURE_PA = 101_325.0
STANDARD_TEMPERATURE_K = 273.0  # App. D writes 273, not 273.15
DEFAULT_O2_REF = 6.0  # % O2; coal-fired boilers [M] (analytics/defaults.yaml flue_gas_reference_o2)

# HJ 212 codes with a role in the arithmetic (App. B); every other code of an outlet is a concentration
# (flue gas: mg/m³, with reference-O2 values and an amount in kg) unless it is a parameter listed here
O2, GAS_FLOW, GAS_TEMPERATURE, GAS_PRESSURE, GAS_HUMIDITY = "a19001", "a00000", "a01012", "a01013", "a01014"
WATER_FLOW = "w00000"
GAS_PARAMETERS = frozenset({O2, GAS_FLOW, GAS_TEMPERATURE, GAS_PRESSURE, GAS_HUMIDITY, "a01011"})
WATER_PARAMETERS = frozenset({WATER_FLOW, "w01001", "w01010"})  # flow, pH, water temperature: no amount

# --- data flags ----------------------------------------------------------------------------------------
# parkmon quality -> HJ 212 data flag: the inverse of quality.HJ212_FLAGS by reason, plus the reasons
# the gateway itself gives: no answer from the instrument (and a held value) is the instrument <-> logger
# link (B); a sentinel, an undecodable register or anything else not good is an instrument fault (D).
_REASON_FLAGS: dict[quality.Reason, str] = {
    quality.reason(q): f for f, q in quality.HJ212_FLAGS.items() if f != "N"
} | {quality.Reason.COMM_FAILURE: "B", quality.Reason.LAST_USABLE: "B"}


def flag_of(q: int, value: float | None = 0.0) -> str:
    """The HJ 212 data flag of a sample: N when its quality is good and it has a value; otherwise the
    letter of its quality's reason (F, M, S, D, C, T, B; D for reasons HJ 212 has no letter for)."""
    if quality.is_good(q):
        return "N" if value is not None else "D"
    try:
        return _REASON_FLAGS.get(quality.reason(q), "D")
    except ValueError:  # a reason number this version does not know
        return "D"


def roll_up_flag(flags: Sequence[str], kind: Kind, min_normal: int) -> str:
    """The flag of an aggregate from the flags of the values it is made of (HJ 212 App. C notes).

    Flue gas: N when at least ``min_normal`` values are normal and they are ≥ 75 % of them, else D.
    Wastewater: N when every value is normal and there are at least ``min_normal``; any abnormal value
    makes it abnormal (the most frequent abnormal letter; D when it only lacks values)."""
    return _flag(sum(1 for f in flags if f == "N"), [f for f in flags if f != "N"], kind, min_normal)


def _flag(normal: int, abnormal: Sequence[str], kind: Kind, min_normal: int) -> str:
    if kind == "gas":
        num, den = NORMAL_SHARE
        return "N" if normal >= min_normal and normal * den >= num * (normal + len(abnormal)) else "D"
    if not abnormal:
        return "N" if normal >= min_normal else "D"
    counts = Counter(abnormal)
    return max(counts, key=lambda f: (counts[f], -DATA_FLAGS.find(f)))


# --- formulas (App. D) ---------------------------------------------------------------------------------
def at_reference_o2(c: float, o2: float, o2_ref: float = DEFAULT_O2_REF) -> float | None:
    """C_折 = C × (21 − O2_ref) / (21 − O2); None when O2 ≥ 21 % (no flue gas to convert)."""
    return None if o2 >= 21.0 else c * (21.0 - o2_ref) / (21.0 - o2)


def standard_flow(qs: float, t_c: float, ba_pa: float = STANDARD_PRESSURE_PA, ps_pa: float = 0.0,
                  xsw: float = 0.0) -> float:
    """Flow at standard state, dry: Qsn = Qs × 273 / (273 + t) × (Ba + Ps) / 101325 × (1 − Xsw).

    ``qs`` actual (wet, working-state) flow in any unit (the result has the same unit), ``t_c`` flue-gas
    temperature °C, ``ba_pa`` atmospheric pressure Pa, ``ps_pa`` flue-gas static (gauge) pressure Pa,
    ``xsw`` water-vapour volume fraction (0..1). Defaults when not measured: Ba = 101 325 Pa, Ps = 0,
    Xsw = 0 (the flow then stays on a wet basis)."""
    return qs * STANDARD_TEMPERATURE_K / (STANDARD_TEMPERATURE_K + t_c) * (ba_pa + ps_pa) / STANDARD_PRESSURE_PA \
        * (1.0 - xsw)


def emission_rate_kg_h(c_mg_m3: float, qsn_m3_h: float) -> float:
    """Gh = C × Qsnh × 10⁻⁶ kg/h (C in mg/m³ at standard state, dry; Qsnh in m³/h standard, dry)."""
    return c_mg_m3 * qsn_m3_h * 1e-6


def gas_amount_kg(c_mg_m3: float, qsn_m3_s: float, seconds: float = 60.0) -> float:
    """Flue-gas pollutant emitted over ``seconds``: C × Qsn × T × 10⁻⁶ kg."""
    return c_mg_m3 * qsn_m3_s * seconds * 1e-6


def gas_volume_m3(qsn_m3_s: float, seconds: float = 60.0) -> float:
    """Flue gas emitted over ``seconds``: Qsn × T m³ (standard state, dry)."""
    return qsn_m3_s * seconds


def water_volume_m3(q_l_s: float, seconds: float = 60.0) -> float:
    """Wastewater over ``seconds``: D = Q[L/s] × T × 10⁻³ m³."""
    return q_l_s * seconds * 1e-3


def water_amount_kg(volume_m3: float, c_mg_l: float) -> float:
    """Wastewater pollutant in a volume: G = D × C × 10⁻³ kg (D m³, C mg/L)."""
    return volume_m3 * c_mg_l * 1e-3


# --- aggregates ----------------------------------------------------------------------------------------
@dataclass(slots=True)
class Aggregate:
    """One code's value over a minute, hour or day. ``avg``/``min``/``max`` come from the normal / valid
    underlying values (None when there are none); ``zs_*`` the same at the reference O2 (flue-gas
    concentrations); ``cou`` the amount (kg of a pollutant, m³ of a flow); ``valid``/``total`` how many
    underlying values were normal / present."""

    start_ms: int
    flag: str
    avg: float | None = None
    min: float | None = None
    max: float | None = None
    zs_avg: float | None = None
    zs_min: float | None = None
    zs_max: float | None = None
    cou: float | None = None
    valid: int = 0
    total: int = 0

    @property
    def is_valid(self) -> bool:
        """A valid value is one flagged N (enough normal values, and the flag rule holds)."""
        return self.flag == "N" and self.avg is not None

    @property
    def value(self) -> float | None:
        return self.avg if self.is_valid else None

    @property
    def zs_value(self) -> float | None:
        return self.zs_avg if self.is_valid else None


def _stats(values: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    return sum(values) / len(values), min(values), max(values)


def period_start(ts_ms: int, period: Literal["minute", "hour", "day"]) -> int:
    """The start of the minute, hour or China day holding ``ts_ms``."""
    if period == "day":
        return (ts_ms + DAY_OFFSET_MS) // DAY_MS * DAY_MS - DAY_OFFSET_MS
    step = MINUTE_MS if period == "minute" else HOUR_MS
    return ts_ms // step * step


def minute_values(samples: Iterable[Reading], kind: Kind, min_samples: int | None = None,
                  period_ms: int = MINUTE_MS) -> dict[int, Aggregate]:
    """Minute start -> the minute's value from real-time samples (every minute with any sample).

    ``min_samples`` defaults to 12 per minute of ``period_ms`` (App. D): 12 for a minute, 120 for a
    wastewater 10-minute value (``period_ms=600_000``)."""
    need = min_samples if min_samples is not None else MIN_SAMPLES * period_ms // MINUTE_MS
    good: dict[int, list[float]] = defaultdict(list)  # the normal values (the hot path: one test each)
    other: dict[int, list[str]] = defaultdict(list)  # the flags of the others
    for t, v, q in samples:
        start = t // period_ms * period_ms
        if v is not None and q < 64:  # quality class good (quality.is_good)
            good[start].append(v)
        else:
            other[start].append(flag_of(q, v))
    out: dict[int, Aggregate] = {}
    for start in sorted(good.keys() | other.keys()):
        vals, flags = good.get(start, []), other.get(start, [])
        avg, lo, hi = _stats(vals)
        flag = _flag(len(vals), flags, kind, need)
        out[start] = Aggregate(start, flag, avg, lo, hi, valid=len(vals), total=len(vals) + len(flags))
    return out


def roll_up(children: Mapping[int, Aggregate], kind: Kind, period: Literal["hour", "day"],
            min_valid: int | None = None) -> dict[int, Aggregate]:
    """Hours from minutes (≥ 45 valid, default) or China days from hours (≥ 20 valid, default): every
    period with any child. Flag by :func:`roll_up_flag`; mean / least / greatest of the valid children's
    means (and of their values at the reference O2) — of an invalid period, of every child's mean, so
    what was measured is still shown under its flag; amount: the sum of every child's amount."""
    need = min_valid if min_valid is not None else (MIN_MINUTES if period == "hour" else MIN_HOURS)
    groups: dict[int, list[Aggregate]] = defaultdict(list)
    for t, a in children.items():
        groups[period_start(t, period)].append(a)
    out: dict[int, Aggregate] = {}
    for start in sorted(groups):
        kids = groups[start]
        good = [a for a in kids if a.is_valid]
        flag = roll_up_flag([a.flag if a.is_valid or a.flag != "N" else "D" for a in kids], kind, need)
        use = good if flag == "N" else kids  # an invalid period shows what its children measured, flagged
        avg, lo, hi = _stats([a.avg for a in use if a.avg is not None])
        zs_avg, zs_lo, zs_hi = _stats([a.zs_avg for a in use if a.zs_avg is not None])
        cous = [a.cou for a in kids if a.cou is not None]
        out[start] = Aggregate(start, flag, avg, lo, hi, zs_avg, zs_lo, zs_hi, sum(cous) if cous else None,
                               len(good), len(kids))
    return out


def _is_concentration(code: str, kind: Kind) -> bool:
    return code not in (GAS_PARAMETERS if kind == "gas" else WATER_PARAMETERS)


def outlet_minutes(samples: Mapping[str, Iterable[Reading]], kind: Kind, *, o2_ref: float = DEFAULT_O2_REF,
                   flow_actual: bool = False, ba_pa: float = STANDARD_PRESSURE_PA,
                   min_samples: int = MIN_SAMPLES) -> dict[str, dict[int, Aggregate]]:
    """Code -> minute start -> minute value of one outlet, with the values at the reference O2 and the
    amounts filled in.

    Flue gas: each concentration's minute is converted with the same minute's O2 (``a19001``) when the
    outlet reports O2; its flag is then N only when the O2 minute is valid too (the value judged is the
    converted one). The flow ``a00000`` is taken as standard, dry (what a CEMS reports); with
    ``flow_actual`` it is the working-state flow and is converted minute by minute with the temperature
    ``a01012`` (°C, required), static pressure ``a01013`` (kPa, else 0), humidity ``a01014`` (% vapour,
    else 0) and ``ba_pa``. Amounts (``cou``): a concentration's kg in each minute where it and the flow
    are valid; the flow's m³ in each minute it is valid."""
    mins = {code: minute_values(s, kind, min_samples) for code, s in samples.items()}
    flow_code = GAS_FLOW if kind == "gas" else WATER_FLOW
    if kind == "gas" and flow_actual and GAS_FLOW in mins:
        mins[GAS_FLOW] = _to_standard(mins, ba_pa)
    flow = mins.get(flow_code, {})
    o2 = mins.get(O2) if kind == "gas" else None
    for code, per_minute in mins.items():
        if code == flow_code:
            for a in per_minute.values():
                if a.value is not None:
                    a.cou = gas_volume_m3(a.value) if kind == "gas" else water_volume_m3(a.value)
            continue
        if not _is_concentration(code, kind):
            continue
        for t, a in per_minute.items():
            c, q = a.value, flow[t].value if t in flow else None
            if c is not None and q is not None:  # the measured concentration: the amount needs no O2
                a.cou = gas_amount_kg(c, q) if kind == "gas" else water_amount_kg(water_volume_m3(q), c)
            if o2 is None:
                continue
            ox = o2.get(t)
            k = None if ox is None or ox.value is None else at_reference_o2(1.0, ox.value, o2_ref)
            if k is None:
                if a.flag == "N":
                    a.flag = "D"  # no valid O2 this minute: no value at the reference O2 to judge
                continue
            a.zs_avg, a.zs_min, a.zs_max = (None if v is None else v * k for v in (a.avg, a.min, a.max))
    return mins


def _to_standard(mins: dict[str, dict[int, Aggregate]], ba_pa: float) -> dict[int, Aggregate]:
    temp, press, hum = (mins.get(c, {}) for c in (GAS_TEMPERATURE, GAS_PRESSURE, GAS_HUMIDITY))
    out: dict[int, Aggregate] = {}
    for t, a in mins[GAS_FLOW].items():
        tc = temp.get(t)
        ps, xs = press.get(t), hum.get(t)
        if tc is None or tc.value is None:
            out[t] = Aggregate(t, a.flag if a.flag != "N" else "D", total=a.total)  # no temperature: no flow
            continue
        f = standard_flow(1.0, tc.value, ba_pa, (ps.value or 0.0) * 1000 if ps else 0.0,
                          (xs.value or 0.0) / 100 if xs else 0.0)
        out[t] = Aggregate(t, a.flag, None if a.avg is None else a.avg * f, None if a.min is None else a.min * f,
                           None if a.max is None else a.max * f, valid=a.valid, total=a.total)
    return out


# --- records -------------------------------------------------------------------------------------------
def _period_ms(cn: str) -> int:
    return {CN_MINUTE: MINUTE_MS, CN_HOUR: HOUR_MS}.get(cn, DAY_MS)


def _fields(a: Aggregate) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, v in (("Cou", a.cou), ("Min", a.min), ("Avg", a.avg), ("Max", a.max),
                    ("ZsMin", a.zs_min), ("ZsAvg", a.zs_avg), ("ZsMax", a.zs_max)):
        if v is not None:
            out[name] = v
    return out


def _to_records(by_code: Mapping[str, Mapping[int, Aggregate]], cn: str, kind: Kind, mn: str,
                until_ms: int) -> list[Record]:
    starts = sorted({t for per in by_code.values() for t in per})
    out = []
    for t in starts:
        if t + _period_ms(cn) > until_ms:
            continue  # not over yet
        values = {code: _fields(per[t]) for code, per in by_code.items() if t in per}
        flags = {code: per[t].flag for code, per in by_code.items() if t in per}
        out.append(Record(mn, ST_AIR_SOURCE if kind == "gas" else ST_WATER_SOURCE, cn, t, values, flags, {}))
    return out


def _sorted(recs: list[Record]) -> list[Record]:
    """In the order a logger sends them: by the end of their period, a minute before its hour."""
    return sorted(recs, key=lambda r: (r.data_time_ms + _period_ms(r.cn), _period_ms(r.cn)))


def records(samples: Mapping[str, Iterable[Reading]], kind: Kind, until_ms: int, *, mn: str = "",
            o2_ref: float = DEFAULT_O2_REF, flow_actual: bool = False, ba_pa: float = STANDARD_PRESSURE_PA,
            cns: Sequence[str] = (CN_MINUTE, CN_HOUR, CN_DAY)) -> list[Record]:
    """The minute (CN 2051), hour (2061) and day (2031) records of one outlet, as its data logger sends them.

    ``samples``: HJ 212 code (``parkmon/common/hj212_codes.py``, e.g. ``a21026``) -> real-time samples
    ``(ts_ms, value or None, quality)``; ``kind``: ``"gas"`` (ST 31) or ``"water"`` (ST 32);
    ``until_ms``: only periods that have ended by then are returned. Every period with any sample
    gives a record, valid or not: ``DataTime`` is the period's start, values ``{code: {Cou, Min, Avg,
    Max[, ZsMin, ZsAvg, ZsMax]}}`` (fields with no value left out), ``flags`` ``{code: letter}``, N only
    for a valid value. An invalid period is still sent with its flag (D, or wastewater's abnormal
    letter) and whatever valid values it had, so the regulator sees the gap. Records come in the order
    a logger sends them. ``cns`` chooses the kinds of record; an hour or day record needs the whole
    hour's or day's samples (else roll minute records up with :func:`roll_up_records`).
    See :func:`outlet_minutes` for ``o2_ref``, ``flow_actual`` and ``ba_pa``."""
    mins = outlet_minutes(samples, kind, o2_ref=o2_ref, flow_actual=flow_actual, ba_pa=ba_pa)
    out: list[Record] = []
    if CN_MINUTE in cns:
        out += _to_records(mins, CN_MINUTE, kind, mn, until_ms)
    if CN_HOUR in cns or CN_DAY in cns:
        hrs = {code: roll_up(per, kind, "hour") for code, per in mins.items()}
        if CN_HOUR in cns:
            out += _to_records(hrs, CN_HOUR, kind, mn, until_ms)
        if CN_DAY in cns:
            out += _to_records({code: roll_up(per, kind, "day") for code, per in hrs.items()}, CN_DAY, kind, mn,
                               until_ms)
    return _sorted(out)


def roll_up_records(children: Iterable[Record], kind: Kind, until_ms: int, *, mn: str = "") -> list[Record]:
    """Hour records from minute records, and day records from hour records (both if both are given):
    what a logger that keeps its minute records rather than its samples sends. Same rules as
    :func:`records`; a child without a flag is taken as N."""
    by_level: dict[str, dict[str, dict[int, Aggregate]]] = {CN_MINUTE: {}, CN_HOUR: {}}
    for r in children:
        if r.cn not in by_level:
            continue
        for code, fields in r.values.items():
            by_level[r.cn].setdefault(code, {})[r.data_time_ms] = Aggregate(
                r.data_time_ms, r.flags.get(code, "N"), fields.get("Avg"), fields.get("Min"), fields.get("Max"),
                fields.get("ZsAvg"), fields.get("ZsMin"), fields.get("ZsMax"), fields.get("Cou"))
        for code, flag in r.flags.items():  # a code sent with its flag alone
            by_level[r.cn].setdefault(code, {}).setdefault(r.data_time_ms, Aggregate(r.data_time_ms, flag))
    out: list[Record] = []
    if by_level[CN_MINUTE]:
        out += _to_records({c: roll_up(per, kind, "hour") for c, per in by_level[CN_MINUTE].items()}, CN_HOUR,
                           kind, mn, until_ms)
    if by_level[CN_HOUR]:
        out += _to_records({c: roll_up(per, kind, "day") for c, per in by_level[CN_HOUR].items()}, CN_DAY,
                           kind, mn, until_ms)
    return _sorted(out)
