"""IEC 60870-5-104 ASDUs: the monitoring types a substation sends, and the two interrogation commands.

The 104 profile fixes the field sizes: type id (1), variable structure qualifier (1: SQ bit 7, number of
objects in bits 0-6), cause of transmission (2: cause in bits 0-5, P/N bit 6, test bit 7; originator
address), common address (2, little-endian), then objects, each an information object address (3,
little-endian) and its element. With SQ = 1 one address is followed by the elements of consecutive
addresses. Multi-byte numbers are little-endian throughout.
"""

from __future__ import annotations

import calendar
import struct
from enum import IntEnum, IntFlag
from typing import NamedTuple

HEADER = 6  # type, VSQ, COT (2), common address (2)


class Cot(IntEnum):
    PERIODIC = 1
    BACKGROUND = 2
    SPONTANEOUS = 3
    INITIALISED = 4
    REQUEST = 5
    ACTIVATION = 6
    ACTIVATION_CON = 7
    DEACTIVATION = 8
    DEACTIVATION_CON = 9
    ACTIVATION_TERMINATION = 10
    INTERROGATED_BY_STATION = 20  # 21..36: by group 1..16
    REQUESTED_BY_GENERAL_COUNTER = 37  # 38..41: counter groups 1..4
    UNKNOWN_TYPE = 44
    UNKNOWN_CAUSE = 45
    UNKNOWN_COMMON_ADDRESS = 46
    UNKNOWN_IOA = 47


class Flag(IntFlag):
    """The quality bits of every element type, in one set (QDS, SIQ/DIQ, BCR and the time tag's own)."""

    IV = 0x01  # invalid
    NT = 0x02  # not topical: not updated in time, an old value
    SB = 0x04  # substituted by an operator or an automatic source
    BL = 0x08  # blocked: frozen at the value it had when blocked
    OV = 0x10  # overflow: outside the range the station can represent
    CY = 0x20  # counter carry: the counter wrapped in the period
    CA = 0x40  # counter adjusted since the last reading
    TIME_IV = 0x80  # the CP56Time2a's own invalid bit: the station's clock is not to be trusted


# QDS / SIQ / DIQ bits onto Flag: IV 0x80, NT 0x40, SB 0x20, BL 0x10, OV 0x01 (OV is QDS only). Decoded flags
# are plain ints (an IntFlag operation costs a microsecond, per value at thousands of values a second).
_QDS = [sum(int(flag) for bit, flag in ((0x80, Flag.IV), (0x40, Flag.NT), (0x20, Flag.SB), (0x10, Flag.BL),
                                        (0x01, Flag.OV)) if b & bit) for b in range(256)]
_IV, _CA, _CY, TIME_IV = int(Flag.IV), int(Flag.CA), int(Flag.CY), int(Flag.TIME_IV)


class Type(IntEnum):
    M_SP_NA_1 = 1  # single point
    M_DP_NA_1 = 3  # double point
    M_ME_NA_1 = 9  # measured value, normalised
    M_ME_NB_1 = 11  # measured value, scaled
    M_ME_NC_1 = 13  # measured value, short floating point
    M_IT_NA_1 = 15  # integrated totals
    M_ME_ND_1 = 21  # normalised without quality descriptor
    M_SP_TB_1 = 30  # ... with CP56Time2a
    M_DP_TB_1 = 31
    M_ME_TD_1 = 34
    M_ME_TE_1 = 35
    M_ME_TF_1 = 36
    M_IT_TB_1 = 37
    M_EI_NA_1 = 70  # end of initialisation
    C_IC_NA_1 = 100  # interrogation command
    C_CI_NA_1 = 101  # counter interrogation command


# element bytes after the address, and whether a CP56Time2a ends it
ELEMENT: dict[int, tuple[int, bool]] = {
    1: (1, False), 3: (1, False), 9: (3, False), 11: (3, False), 13: (5, False), 15: (5, False),
    21: (2, False), 30: (8, True), 31: (8, True), 34: (10, True), 35: (10, True), 36: (12, True),
    37: (12, True),
}
COUNTERS = frozenset({15, 37})
DOUBLE_POINTS = frozenset({3, 31})

_I16 = struct.Struct("<h")
_F32 = struct.Struct("<f")
_I32 = struct.Struct("<i")


class AsduError(ValueError):
    """An ASDU that does not add up (its length disagrees with its type and count)."""


class InfoObject(NamedTuple):  # a tuple: built once per value received
    ioa: int
    value: float | None  # None: a double point in its intermediate or indeterminate state
    flags: int  # Flag bits
    time_ms: int | None  # the station's time tag as epoch ms UTC, None for types without one
    counter_seq: int = -1  # integrated totals: the sequence number (0-31) the station counts per reading


class Asdu(NamedTuple):
    type_id: int
    cot: int
    negative: bool
    test: bool
    originator: int
    common_address: int
    objects: list[InfoObject]
    raw_info: bytes  # the bytes after the header (commands' qualifiers are read from it)


def cp56_to_ms(b: bytes | memoryview, at: int, utc_offset_ms: int) -> tuple[int | None, bool]:
    """CP56Time2a at ``b[at:at+7]`` -> (epoch ms UTC, invalid bit). The tag carries the station's wall clock
    with no zone: ``utc_offset_ms`` says how far ahead of UTC it runs. A tag that is no date -> None.

    ms 0-59999 (2 bytes, seconds included) | IV, -, minute 0-59 | SU, -, hour 0-23 |
    weekday 1-7 (bits 5-7), day 1-31 | month 1-12 | year 0-99 (of 2000)."""
    millis = b[at] | (b[at + 1] << 8)
    minute, hour = b[at + 2] & 0x3F, b[at + 3] & 0x1F
    day, month, year = b[at + 4] & 0x1F, b[at + 5] & 0x0F, b[at + 6] & 0x7F
    invalid = bool(b[at + 2] & 0x80)
    if millis > 59999 or minute > 59 or hour > 23 or not 1 <= day <= 31 or not 1 <= month <= 12:
        return None, True
    try:
        secs = calendar.timegm((2000 + year, month, day, hour, minute, 0, 0, 0, 0))
    except (ValueError, OverflowError):
        return None, True
    if day > calendar.monthrange(2000 + year, month)[1]:  # 31 February: timegm would roll it over
        return None, True
    return secs * 1000 + millis - utc_offset_ms, invalid


def _element(type_id: int, b: bytes, at: int, ioa: int, utc_offset_ms: int) -> InfoObject:
    flags = 0
    seq = -1
    value: float | None
    if type_id in (1, 30):
        value, flags = float(b[at] & 0x01), _QDS[b[at] & 0xF0]
    elif type_id in (3, 31):
        dpi = b[at] & 0x03  # 1 off, 2 on; 0 intermediate, 3 indeterminate
        value = float(dpi - 1) if dpi in (1, 2) else None
        flags = _QDS[b[at] & 0xF0]
    elif type_id in (9, 34):
        value, flags = _I16.unpack_from(b, at)[0] / 32768.0, _QDS[b[at + 2]]
    elif type_id in (11, 35):
        value, flags = float(_I16.unpack_from(b, at)[0]), _QDS[b[at + 2]]
    elif type_id in (13, 36):
        value, flags = _F32.unpack_from(b, at)[0], _QDS[b[at + 4]]
    elif type_id in (15, 37):
        value = float(_I32.unpack_from(b, at)[0])
        q = b[at + 4]
        seq = q & 0x1F
        flags = (_IV if q & 0x80 else 0) | (_CA if q & 0x40 else 0) | (_CY if q & 0x20 else 0)
    else:  # 21: normalised, no quality descriptor
        value = _I16.unpack_from(b, at)[0] / 32768.0
    size, timed = ELEMENT[type_id]
    time_ms = None
    if timed:
        time_ms, bad_time = cp56_to_ms(b, at + size - 7, utc_offset_ms)
        if bad_time:
            flags |= TIME_IV
    return InfoObject(ioa, value, flags, time_ms, seq)


def decode(asdu: bytes, utc_offset_ms: int = 0) -> Asdu:
    """An ASDU; the objects of a monitoring type parkmon reads decoded, other types' left in raw_info."""
    if len(asdu) < HEADER:
        raise AsduError(f"ASDU of {len(asdu)} bytes: the header alone is {HEADER}")
    type_id, vsq, c0 = asdu[0], asdu[1], asdu[2]
    count, sq = vsq & 0x7F, bool(vsq & 0x80)
    head = Asdu(type_id, c0 & 0x3F, bool(c0 & 0x40), bool(c0 & 0x80), asdu[3], asdu[4] | (asdu[5] << 8), [],
                asdu[HEADER:])
    shape = ELEMENT.get(type_id)
    if shape is None:
        return head
    size = shape[0]
    need = HEADER + (3 + size * count if sq else (3 + size) * count)
    if len(asdu) != need:
        raise AsduError(f"type {type_id} with {count} objects (SQ={int(sq)}) is {need} bytes, got {len(asdu)}")
    objects = head.objects
    at = HEADER
    if sq:
        base = asdu[at] | (asdu[at + 1] << 8) | (asdu[at + 2] << 16)
        at += 3
        for i in range(count):
            objects.append(_element(type_id, asdu, at, base + i, utc_offset_ms))
            at += size
    else:
        for _ in range(count):
            ioa = asdu[at] | (asdu[at + 1] << 8) | (asdu[at + 2] << 16)
            objects.append(_element(type_id, asdu, at + 3, ioa, utc_offset_ms))
            at += 3 + size
    return head


def command(type_id: Type, qualifier: int, common_address: int, originator: int = 0,
            cot: Cot = Cot.ACTIVATION) -> bytes:
    """C_IC_NA_1 (qualifier QOI: 20 = station interrogation) or C_CI_NA_1 (QCC: request 5 = general
    counter request in bits 0-5, freeze 0 = read only in bits 6-7), on information object address 0."""
    return bytes((type_id, 1, cot, originator, common_address & 0xFF, common_address >> 8, 0, 0, 0, qualifier))


QOI_STATION = 20
QCC_GENERAL_READ = 5
