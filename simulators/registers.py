"""Physical values -> register words, as the device's register map (the profile) lays them out.

Uses pymodbus' own conversion for the word layout (ABCD, or CDAB as word_order "little"); the
simulated devices use only those two. Returns the value the registers really represent too, so
the ground truth can say exactly what a correct reader must get after scaling and rounding.
"""

from __future__ import annotations

import struct

from pymodbus.client import ModbusTcpClient

from edge_agent.config import PointConfig, load_profile

DT = ModbusTcpClient.DATATYPE
_TYPES = {"int16": DT.INT16, "uint16": DT.UINT16, "int32": DT.INT32, "uint32": DT.UINT32,
          "int64": DT.INT64, "uint64": DT.UINT64, "float32": DT.FLOAT32, "float64": DT.FLOAT64}
_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1),
           "uint32": (0, 2**32 - 1), "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}


def profile_points(name: str) -> list[PointConfig]:
    return [PointConfig.model_validate(p) for p in load_profile(name)]


def encode(point: PointConfig, value: float) -> tuple[list[int], float]:
    """(register words, value they represent)."""
    if point.order not in ("ABCD", "CDAB"):
        raise ValueError(f"point {point.name}: the simulator writes ABCD or CDAB only, not {point.order}")
    raw: float | int = (value - point.offset) / point.scale
    if point.type in _RANGES:
        lo, hi = _RANGES[point.type]
        raw = min(hi, max(lo, round(raw)))
        represented = raw * point.scale + point.offset
    elif point.type == "float32":
        raw = struct.unpack(">f", struct.pack(">f", raw))[0]
        represented = raw * point.scale + point.offset
    else:
        represented = raw * point.scale + point.offset
    words = ModbusTcpClient.convert_to_registers(raw, _TYPES[point.type],
                                                 word_order="little" if point.order == "CDAB" else "big")
    return list(words), float(represented)


def sentinel_words(point: PointConfig) -> list[int]:
    """The register image of the point's first sentinel (what a faulty sensor shows)."""
    image = point.sentinels[0]
    return [(image >> (16 * (point.registers - 1 - i))) & 0xFFFF for i in range(point.registers)]
