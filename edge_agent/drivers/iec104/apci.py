"""IEC 60870-5-104 APCI: the 6-byte header in front of every APDU, and the three frame formats.

    0x68 | length (of the 4 control octets and the ASDU: 4..253) | c1 c2 c3 c4 | ASDU (I format only)

I format (c1 bit 0 = 0): send sequence N(S) in c1..c2 and receive sequence N(R) in c3..c4, each 15 bits
shifted left by one. S format (c1 = 0x01): N(R) only, an acknowledgement. U format (c1 bits 0-1 = 11): one
function bit set in c1 (STARTDT / STOPDT / TESTFR, activation or confirmation). Sequence numbers count
modulo 32768.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

START = 0x68
MAX_LENGTH = 253  # the length octet counts the control field and the ASDU
SEQ_MOD = 1 << 15


class U(IntEnum):
    """U-format functions: the whole first control octet."""

    STARTDT_ACT = 0x07
    STARTDT_CON = 0x0B
    STOPDT_ACT = 0x13
    STOPDT_CON = 0x23
    TESTFR_ACT = 0x43
    TESTFR_CON = 0x83


class FrameError(ValueError):
    """Bytes that are not an APDU: the link is out of step and must be closed (the standard's rule)."""


class IFrame(NamedTuple):  # a tuple: one per data frame, thousands a second
    ns: int
    nr: int
    asdu: bytes


@dataclass(frozen=True, slots=True)
class SFrame:
    nr: int


@dataclass(frozen=True, slots=True)
class UFrame:
    function: U


Frame = IFrame | SFrame | UFrame


def u_frame(function: U) -> bytes:
    return bytes((START, 4, function, 0, 0, 0))


def s_frame(nr: int) -> bytes:
    return bytes((START, 4, 0x01, 0x00, (nr << 1) & 0xFF, (nr >> 7) & 0xFF))


def i_frame(ns: int, nr: int, asdu: bytes) -> bytes:
    if len(asdu) > MAX_LENGTH - 4:
        raise ValueError(f"ASDU of {len(asdu)} bytes: an APDU carries {MAX_LENGTH - 4} at most")
    return bytes((START, 4 + len(asdu), (ns << 1) & 0xFF, (ns >> 7) & 0xFF, (nr << 1) & 0xFF,
                  (nr >> 7) & 0xFF)) + asdu


def check_header(head: bytes | bytearray) -> int:
    """The two first bytes of an APDU -> how many bytes follow them."""
    if head[0] != START:
        raise FrameError(f"APDU starts with 0x{head[0]:02X}, not 0x68: the stream is out of step")
    if not 4 <= head[1] <= MAX_LENGTH:
        raise FrameError(f"APDU length {head[1]} outside 4..{MAX_LENGTH}")
    return head[1]


def parse(body: bytes) -> Frame:
    """The bytes after start and length: 4 control octets, then the ASDU of an I frame."""
    c1, c2, c3, c4 = body[0], body[1], body[2], body[3]
    if c1 & 0x01 == 0:
        return IFrame((c1 >> 1) | (c2 << 7), (c3 >> 1) | (c4 << 7), bytes(body[4:]))
    if c1 & 0x03 == 0x01:
        if len(body) != 4:
            raise FrameError(f"S frame with {len(body) - 4} bytes after its control field")
        return SFrame((c3 >> 1) | (c4 << 7))
    try:
        function = U(c1)
    except ValueError:
        raise FrameError(f"U frame with control octet 0x{c1:02X}: not STARTDT, STOPDT or TESTFR") from None
    if len(body) != 4:
        raise FrameError(f"U frame with {len(body) - 4} bytes after its control field")
    return UFrame(function)


def seq_distance(newer: int, older: int) -> int:
    """How many frames ``newer`` is past ``older``, modulo 32768."""
    return (newer - older) % SEQ_MOD
