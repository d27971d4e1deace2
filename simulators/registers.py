"""Physical values -> register words, as the device's register map (the profile) lays them out.

Uses pymodbus' own conversion for the word layout (ABCD, or CDAB as word_order "little"); the
simulated devices use only those two. Returns the value the registers really represent too, so
the ground truth can say exactly what a correct reader must get after scaling and rounding.
Coils and discrete inputs (function codes 1 and 2) hold single bits: their image is one 0 / 1 per
address.
"""

from __future__ import annotations

import struct
from functools import cache

from pymodbus.client import ModbusTcpClient

from edge_agent.config import PointConfig, load_profile
from parkmon.common import metrics

DT = ModbusTcpClient.DATATYPE
_TYPES = {"int16": DT.INT16, "uint16": DT.UINT16, "int32": DT.INT32, "uint32": DT.UINT32,
          "int64": DT.INT64, "uint64": DT.UINT64, "float32": DT.FLOAT32, "float64": DT.FLOAT64}
_RANGES = {"int16": (-(2**15), 2**15 - 1), "uint16": (0, 2**16 - 1), "int32": (-(2**31), 2**31 - 1),
           "uint32": (0, 2**32 - 1), "int64": (-(2**63), 2**63 - 1), "uint64": (0, 2**64 - 1)}
FC = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}  # read function code per table
BIT_TABLES = ("coil", "discrete")


@cache
def profile_points(name: str) -> list[PointConfig]:
    return [PointConfig.model_validate(p) for p in load_profile(name)]


def address(point: PointConfig) -> int:
    if point.address is None or point.table not in FC:
        raise ValueError(f"point {point.name}: the simulator serves Modbus tables {', '.join(FC)} at an "
                         f"address, not table {point.table} address {point.address}")
    return point.address


def table_sizes(points: list[PointConfig]) -> dict[str, int]:
    """Registers (bits, for coils and discrete inputs) each table must hold for this map (at least one,
    so the block exists)."""
    return {t: max([address(p) + p.registers for p in points if p.table == t], default=1) for t in FC}


def encode(point: PointConfig, value: float) -> tuple[list[int], float]:
    """(register words, value they represent).

    Integers are rounded; counters wrap at the register width like a real meter's totaliser,
    other values saturate. A raw value that happens to equal a sentinel is nudged by one step,
    so only a fault ever shows a sentinel.
    """
    if point.type == "bit":
        if point.table not in BIT_TABLES:
            raise ValueError(f"point {point.name}: the simulator writes bits as coils or discrete inputs, "
                             f"not as bit {point.bit} of a {point.table} register")
        bit = 1 if value >= 0.5 else 0
        return [bit], float(bit)
    if point.order not in ("ABCD", "CDAB"):
        raise ValueError(f"point {point.name}: the simulator writes ABCD or CDAB only, not {point.order}")
    if point.type not in _TYPES:
        raise ValueError(f"point {point.name}: the simulator cannot write type {point.type}")
    raw: float | int = (value - point.offset) / point.scale
    if point.type in _RANGES:
        lo, hi = _RANGES[point.type]
        raw = round(raw)
        if metrics.get(point.metric).kind == metrics.Kind.COUNTER and lo == 0:
            raw %= hi + 1
        raw = min(hi, max(lo, raw))
        mask = (1 << (16 * point.registers)) - 1
        while raw & mask in point.sentinels:
            raw = raw - 1 if raw > lo else raw + 1
    elif point.type == "float32":
        raw = struct.unpack(">f", struct.pack(">f", raw))[0]
    words = ModbusTcpClient.convert_to_registers(raw, _TYPES[point.type],
                                                 word_order="little" if point.order == "CDAB" else "big")
    return list(words), float(raw * point.scale + point.offset)


def sentinel_words(point: PointConfig) -> list[int]:
    """The register image of the point's first sentinel (what a faulty sensor shows)."""
    image = point.sentinels[0]
    return [(image >> (16 * (point.registers - 1 - i))) & 0xFFFF for i in range(point.registers)]


def device_image(points: list[PointConfig], values: dict[str, float], sentinel: bool = False
                 ) -> tuple[dict[str, list[int]], dict[str, float | None]]:
    """The full image of every table the map uses for one device, and what each point represents.

    A point shows its sentinel (represents ``None``) when ``sentinel`` is set and it has one.
    """
    used: set[str] = {p.table for p in points}
    images = {t: [0] * n for t, n in table_sizes(points).items() if t in used}
    represented: dict[str, float | None] = {}
    for p in points:
        if sentinel and p.sentinels:
            words, rep = sentinel_words(p), None
        else:
            words, rep = encode(p, values[p.name])
        at = address(p)
        images[p.table][at : at + len(words)] = words
        represented[p.name] = rep
    return images, represented
