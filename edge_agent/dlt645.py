"""DL/T 645-2007 frames (the Chinese electricity-meter protocol): build, parse, decode. No I/O.

Frame: ``[FE…] 68 A0..A5 68 C L DATA CS 16``. The address is 6 BCD bytes, low byte first; DATA
bytes travel with 0x33 added; CS is the byte sum from the first 68 through DATA, mod 256; a read
asks for one data identifier (DI, 4 bytes, low byte first). Facts and verified frames:
../shared/reference/domain.md §7.
"""

from __future__ import annotations

from dataclasses import dataclass

PREAMBLE = b"\xfe\xfe\xfe\xfe"
READ = 0x11
READ_REPLY = 0x91
READ_ERROR = 0xD1
WILDCARD = "AAAAAAAAAAAA"


class Dlt645Error(ValueError):
    """A frame that is not valid DL/T 645-2007; the message says which part and what was expected."""


@dataclass(frozen=True)
class DiFormat:
    """How a data identifier's value is written: BCD digits, decimals, and whether the top bit is a sign."""

    nbytes: int
    decimals: int
    signed: bool
    unit: str


# The DIs parkmon reads (domain.md §7); extend with the meter's manual.
FORMATS: dict[int, DiFormat] = {
    0x00000000: DiFormat(4, 2, False, "kWh"),  # 组合有功总电能
    0x00010000: DiFormat(4, 2, False, "kWh"),  # 正向有功总电能
    0x00020000: DiFormat(4, 2, False, "kWh"),  # 反向有功总电能
    0x02010100: DiFormat(2, 1, False, "V"),  # A相电压 XXX.X
    0x02010200: DiFormat(2, 1, False, "V"),
    0x02010300: DiFormat(2, 1, False, "V"),
    0x02020100: DiFormat(3, 3, True, "A"),  # A相电流 XXX.XXX
    0x02020200: DiFormat(3, 3, True, "A"),
    0x02020300: DiFormat(3, 3, True, "A"),
    0x02030000: DiFormat(3, 4, True, "kW"),  # 总有功功率 XX.XXXX
    0x02060000: DiFormat(2, 3, True, ""),  # 总功率因数 X.XXX
    0x02800002: DiFormat(2, 2, False, "Hz"),  # 电网频率 XX.XX
}


@dataclass(frozen=True)
class Frame:
    address: str  # 12 digits, most significant first, as printed on the meter
    control: int
    data: bytes  # with the 0x33 already removed


def encode_address(address: str) -> bytes:
    if len(address) != 12 or not all(c in "0123456789Aa" for c in address):
        raise Dlt645Error(f"meter address {address!r} must be 12 digits (AAAAAAAAAAAA for any meter)")
    return bytes.fromhex(address)[::-1]


def checksum(body: bytes) -> int:
    return sum(body) & 0xFF


def build(address: str, control: int, data: bytes = b"", preamble: bool = True) -> bytes:
    body = b"\x68" + encode_address(address) + b"\x68" + bytes([control, len(data)])
    body += bytes((b + 0x33) & 0xFF for b in data)
    return (PREAMBLE if preamble else b"") + body + bytes([checksum(body), 0x16])


def build_read(address: str, di: int, preamble: bool = True) -> bytes:
    return build(address, READ, di.to_bytes(4, "little"), preamble)


def frame_length(buf: bytes) -> int | None:
    """Bytes a complete frame at the start of ``buf`` (after any FE) needs, or None if not known yet."""
    i = _start(buf)
    if i < 0 or len(buf) < i + 10:
        return None
    return i + 12 + buf[i + 9]


def _start(buf: bytes) -> int:
    i = 0
    while i < len(buf) and buf[i] == 0xFE:
        i += 1
    return i if i < len(buf) and buf[i] == 0x68 else -1


def parse(buf: bytes) -> Frame:
    i = _start(buf)
    if i < 0:
        raise Dlt645Error("no frame start: expected 0x68 after the FE preamble")
    if len(buf) < i + 12:
        raise Dlt645Error(f"frame too short: {len(buf) - i} bytes, a frame has at least 12")
    if buf[i + 7] != 0x68:
        raise Dlt645Error(f"byte 7 of the frame is {buf[i + 7]:#04x}, expected the second 0x68")
    n = buf[i + 9]
    end = i + 10 + n
    if len(buf) < end + 2:
        raise Dlt645Error(f"length field says {n} data bytes but the frame ends after {len(buf) - i - 10}")
    body = buf[i:end]
    if buf[end] != checksum(body):
        raise Dlt645Error(f"checksum {buf[end]:#04x} does not match the computed {checksum(body):#04x}")
    if buf[end + 1] != 0x16:
        raise Dlt645Error(f"frame ends with {buf[end + 1]:#04x}, expected 0x16")
    address = body[1:7][::-1].hex().upper()
    data = bytes((b - 0x33) & 0xFF for b in body[10:])
    return Frame(address, body[8], data)


def _bcd(raw: bytes) -> int:
    digits = raw[::-1].hex()  # low byte first on the wire
    if not digits.isdigit():
        raise Dlt645Error(f"value bytes {raw.hex()} are not BCD")
    return int(digits)


def decode_value(di: int, payload: bytes) -> float:
    """The number a read reply carries for ``di`` (``payload`` = reply data after the 4 DI bytes)."""
    fmt = FORMATS.get(di)
    if fmt is None:
        raise Dlt645Error(f"DI {di:08X} has no known format; add it to edge_agent.dlt645.FORMATS")
    if len(payload) != fmt.nbytes:
        raise Dlt645Error(f"DI {di:08X} carries {len(payload)} value bytes, expected {fmt.nbytes}")
    raw = bytearray(payload)
    negative = fmt.signed and bool(raw[-1] & 0x80)
    if fmt.signed:
        raw[-1] &= 0x7F
    value = _bcd(bytes(raw)) / float(10**fmt.decimals)
    return -value if negative else value


def encode_value(di: int, value: float) -> bytes:
    """The inverse of :func:`decode_value` (for the simulated meter)."""
    fmt = FORMATS[di]
    n = round(abs(value) * 10**fmt.decimals)
    digits = f"{n:0{fmt.nbytes * 2}d}"[-fmt.nbytes * 2 :]
    raw = bytearray(bytes.fromhex(digits)[::-1])
    if fmt.signed and value < 0:
        raw[-1] |= 0x80
    return bytes(raw)


def read_reply(frame: Frame, di: int) -> float:
    """Check a reply to a read of ``di`` and return its value; an error reply raises with the meter's code."""
    if frame.control == READ_ERROR:
        code = frame.data[0] if frame.data else 0
        raise Dlt645Error(f"meter {frame.address} refused DI {di:08X} (error code {code:#04x})")
    if frame.control != READ_REPLY:
        raise Dlt645Error(f"control byte {frame.control:#04x} is not a read reply (0x91)")
    got = int.from_bytes(frame.data[:4], "little")
    if got != di:
        raise Dlt645Error(f"reply is for DI {got:08X}, we asked for {di:08X}")
    value: float = decode_value(di, frame.data[4:])
    return value
