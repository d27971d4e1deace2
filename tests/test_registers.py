"""Register decoding: every type and word/byte order against byte layouts written out by hand."""

from __future__ import annotations

import struct

import pytest

from edge_agent.config import PointConfig
from edge_agent.registers import decode_words
from parkmon.common import quality


def _point(**kw: object) -> PointConfig:
    base: dict[str, object] = {"name": "p", "metric": "elec.active_power", "address": 0}
    base.update(kw)
    return PointConfig.model_validate(base)


def _words(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


# float32 123.456 is 0x42F6E979: A=42 B=F6 C=E9 D=79
F32 = struct.pack(">f", 123.456)
CASES = [
    ("float32", "ABCD", F32, struct.unpack(">f", F32)[0]),
    ("float32", "CDAB", F32[2:] + F32[:2], struct.unpack(">f", F32)[0]),
    ("float32", "BADC", bytes([F32[1], F32[0], F32[3], F32[2]]), struct.unpack(">f", F32)[0]),
    ("float32", "DCBA", F32[::-1], struct.unpack(">f", F32)[0]),
    ("int16", "ABCD", struct.pack(">h", -1234), -1234.0),
    ("uint16", "ABCD", struct.pack(">H", 65000), 65000.0),
    ("int32", "ABCD", struct.pack(">i", -123456789), -123456789.0),
    ("int32", "CDAB", struct.pack(">i", -123456789)[2:] + struct.pack(">i", -123456789)[:2], -123456789.0),
    ("uint32", "ABCD", struct.pack(">I", 4_000_000_000), 4_000_000_000.0),
    ("uint64", "CDAB", b"".join(reversed([struct.pack(">Q", 2**40 + 5)[i : i + 2] for i in range(0, 8, 2)])),
     float(2**40 + 5)),
    ("int64", "DCBA", struct.pack(">q", -(2**35))[::-1], float(-(2**35))),
    ("float64", "ABCD", struct.pack(">d", 1e10 / 3), 1e10 / 3),
]


@pytest.mark.parametrize(("dtype", "order", "raw", "expected"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_types_and_orders(dtype: str, order: str, raw: bytes, expected: float) -> None:
    value, q = decode_words(_point(type=dtype, order=order), _words(raw))
    assert q == quality.GOOD
    assert value == pytest.approx(expected)


def test_scale_and_offset() -> None:
    # raw 12345 * 0.01 - 40 = 83.45
    value, _ = decode_words(_point(type="uint16", scale=0.01, offset=-40), [12345])
    assert value == pytest.approx(83.45)


def test_sentinel_is_bad_quality_not_a_number() -> None:
    value, q = decode_words(_point(type="int16", sentinels=[0x8000]), [0x8000])
    assert value is None
    assert q == quality.bad(quality.Reason.SENSOR_FAILURE)


def test_nan_float_is_bad_quality() -> None:
    value, q = decode_words(_point(type="float32"), _words(struct.pack(">f", float("nan"))))
    assert value is None
    assert quality.quality_class(q) == quality.QualityClass.BAD
