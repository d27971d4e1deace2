"""Register images -> engineering values, with quality.

Byte and word order are applied to the raw register words and the result unpacked with
``struct``: pymodbus' own ``convert_from_registers`` only knows word order, and the byte-swapped
layouts (BADC, DCBA) are exactly the ones field configs get wrong, so one explicit routine for all
four keeps them side by side and testable.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from edge_agent.config import PointConfig
from parkmon.common import quality
from parkmon.common.quality import Reason

_FORMATS: dict[str, str] = {
    "int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "int64": ">q", "uint64": ">Q",
    "float32": ">f", "float64": ">d",
}
_UNSIGNED: dict[int, str] = {1: ">H", 2: ">I", 4: ">Q"}


def ordered_bytes(words: Sequence[int], order: str) -> bytes:
    """Reassemble the device's words into big-endian ABCD byte order."""
    ws = list(words)
    if order in ("CDAB", "DCBA"):  # low word first
        ws.reverse()
    raw = b"".join(w.to_bytes(2, "big") for w in ws)
    if order in ("BADC", "DCBA"):  # bytes swapped inside each word
        raw = b"".join(raw[i + 1 : i + 2] + raw[i : i + 1] for i in range(0, len(raw), 2))
    return raw


def decode_words(point: PointConfig, words: Sequence[int], sf_word: int | None = None) -> tuple[float | None, int]:
    """Decode one point from its register words (and its scale-factor register, if it has one).
    Never raises for device data: bad data is quality."""
    if point.type == "string":
        # a string is a label, not a measurement; parkmon keeps numeric points only
        return None, quality.bad(Reason.CONFIG_ERROR)
    if point.type == "bit":
        bit = point.bit or 0
        return float((words[0] >> bit) & 1), quality.GOOD
    data = ordered_bytes(words, point.order)
    if point.sentinels:
        (image,) = struct.unpack(_UNSIGNED[len(words)], data)
        if image in point.sentinels:
            return None, quality.bad(Reason.SENSOR_FAILURE)
    (value,) = struct.unpack(_FORMATS[point.type], data)
    if isinstance(value, float) and not math.isfinite(value):
        return None, quality.bad(Reason.SENSOR_FAILURE)
    scale = point.scale
    if point.scale_factor_address is not None:
        if sf_word is None or sf_word == 0x8000:  # SunSpec "not implemented"
            return None, quality.bad(Reason.SENSOR_FAILURE)
        sf = sf_word - 0x10000 if sf_word & 0x8000 else sf_word
        if not -10 <= sf <= 10:
            return None, quality.bad(Reason.SENSOR_FAILURE)
        scale *= 10.0**sf
    return float(value) * scale + point.offset, quality.GOOD


def decode_bit(point: PointConfig, bit: bool) -> tuple[float | None, int]:
    return (1.0 if bit else 0.0), quality.GOOD
