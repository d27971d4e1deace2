"""Sample quality: the OPC UA idea (good / uncertain / bad) with a reason, packed in one small int.

The top two bits carry the class the way OPC UA status codes do (00 good, 01 uncertain, 10 bad);
the low six bits carry the reason. One byte on the wire and in the database, and
``quality_class(q)`` is a shift, so queries can filter on ``quality < 64`` for "good only".
"""

from __future__ import annotations

from enum import IntEnum


class QualityClass(IntEnum):
    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class Reason(IntEnum):
    """Why a sample is not plainly good. Stable numbers: they are stored."""

    NONE = 0
    COMM_FAILURE = 1  # device did not answer (timeout, connection refused)
    DEVICE_FAILURE = 2  # device answered with an exception / fault flag (HJ 212 D)
    SENSOR_FAILURE = 3  # sentinel value (0x8000, NaN, 0xFFFF) where a number should be
    OUT_OF_RANGE = 4  # above the instrument's upper limit (HJ 212 T)
    MAINTENANCE = 5  # maintenance period (HJ 212 M)
    CALIBRATION = 6  # calibration in progress (HJ 212 C)
    MANUAL = 7  # manually entered / substituted value (HJ 212 S)
    STOPPED = 8  # instrument stopped (HJ 212 F)
    LAST_USABLE = 9  # held value, not fresh
    COUNTER_RESET = 10  # totaliser went backwards: meter reset or replaced
    COUNTER_ROLLOVER = 11  # totaliser wrapped at its register width
    CONFIG_ERROR = 12  # point cannot be decoded as configured (e.g. bad string bytes)
    LINK_FAILURE = 13  # instrument <-> data-logger link abnormal (HJ 212 B)


GOOD = 0


def make(cls: QualityClass, reason: Reason = Reason.NONE) -> int:
    return (int(cls) << 6) | int(reason)


def quality_class(q: int) -> QualityClass:
    return QualityClass((q >> 6) & 0x3)


def reason(q: int) -> Reason:
    return Reason(q & 0x3F)


def is_good(q: int) -> bool:
    return q >> 6 == QualityClass.GOOD


def bad(why: Reason) -> int:
    return make(QualityClass.BAD, why)


def uncertain(why: Reason) -> int:
    return make(QualityClass.UNCERTAIN, why)


# HJ 212-2017 table 8 data flags onto quality (domain.md §3.3).
HJ212_FLAGS: dict[str, int] = {
    "N": GOOD,
    "F": bad(Reason.STOPPED),
    "M": uncertain(Reason.MAINTENANCE),
    "S": uncertain(Reason.MANUAL),
    "D": bad(Reason.DEVICE_FAILURE),
    "C": uncertain(Reason.CALIBRATION),
    "T": uncertain(Reason.OUT_OF_RANGE),
    "B": bad(Reason.LINK_FAILURE),
}


def describe(q: int) -> str:
    """Human text, e.g. ``bad:comm_failure``; used in logs and the API."""
    return f"{quality_class(q).name.lower()}:{reason(q).name.lower()}"
