"""The one clock: time on the wire and in the store is epoch milliseconds UTC; days, months and target
years are China's calendar.

China is a fixed UTC+8: it has kept no daylight saving since 1991, and the wire refuses times before 2000,
so a fixed offset gives the same dates as ``ZoneInfo("Asia/Shanghai")`` for every time parkmon holds,
without needing the tz database on a gateway.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "UTC+8")

SECOND_MS = 1_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
CHINA_OFFSET_MS = 8 * HOUR_MS  # a China day starts at 00:00 UTC+8 = 16:00 UTC the day before


def now_ms() -> int:
    """Wall-clock now, epoch milliseconds UTC."""
    return time.time_ns() // 1_000_000


def china_datetime(ts_ms: int) -> datetime:
    """``ts_ms`` as an aware datetime in China's time."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=CHINA)


def china_day_start_ms(ts_ms: int) -> int:
    """Start of the China calendar day holding ``ts_ms``, epoch ms."""
    return (ts_ms + CHINA_OFFSET_MS) // DAY_MS * DAY_MS - CHINA_OFFSET_MS
