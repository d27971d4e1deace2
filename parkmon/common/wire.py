"""The wire contract (v1) between gateways and the platform. Imports only msgspec.

Topics
    parkmon/v1/{park}/{enterprise}/{gateway}/data     telemetry batches (QoS 1)
    parkmon/v1/{park}/{enterprise}/{gateway}/status   birth / death, retained (death = MQTT will)
    parkmon/v1/{park}/{enterprise}/{gateway}/meta     the gateway's point catalogue, retained
    parkmon/v1/{park}/{enterprise}/{gateway}/health   the agent's own figures, retained
    parkmon/v1/{park}/{enterprise}/{gateway}/ack      platform -> gateway: seqs committed (QoS 0)

Data payload (JSON, compact arrays so ``mosquitto_sub`` stays readable and decoding stays fast)::

    {"v": 1, "gw": "gw-01", "seq": 42, "sent": 1763800000123,
     "samples": [["meter1.import", 1763800000000, 1234.56, 0], ...]}

A sample is ``[point, source time in epoch milliseconds UTC, value or null, quality]``; ``point``
is ``{device}.{point}`` and unique within the enterprise; the quality byte is
:mod:`parkmon.common.quality`. ``seq`` grows by one per batch and per gateway and survives restarts, so
the platform can count gaps. A sample's identity is (point, source time): replays are harmless.

Ack payload (ingest -> the one gateway, after the commit; docs/decisions/0010-end-to-end-ack.md)::

    {"v": 1, "gw": "gw-01", "seqs": [[40, 42], [45, 45]]}

``seqs`` are inclusive ranges, ascending and disjoint: those batches are in the platform's store (or its
dead letters) and the gateway may forget them. A repeat is acked again.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec

VERSION = 1
TOPIC_ROOT = "parkmon/v1"
# \Z, not $: "$" also matches before a final newline, and "demo\n" would register a park of its own
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
_POINT = re.compile(r"^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_-]{1,64}\Z")

_TS_MIN, _TS_MAX = 946_684_800_000, 32_503_680_000_000  # 2000-01-01, 3000-01-01 UTC

Sample = tuple[str, int, float | None, int]
# a gateway's clock, epoch ms: stored in BIGINT columns (status_ms, health_ms, sent_ms); larger would overflow there
_SentMs = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
# The same shape with the contract's limits, checked by msgspec in C while decoding: a Python loop
# over every sample cost 4x the JSON parse itself (bench/ingest_pg.py). Point names are checked once per
# distinct name instead (a regex per sample, even inside msgspec, cost 300 ns).
_CheckedSample = tuple[
    str,
    Annotated[int, msgspec.Meta(ge=_TS_MIN, lt=_TS_MAX)],
    float | None,
    Annotated[int, msgspec.Meta(ge=0, le=255)],
]


class Batch(msgspec.Struct, frozen=True):
    v: int
    gw: str
    seq: int
    sent: int
    samples: list[Sample]


class _CheckedBatch(msgspec.Struct, frozen=True):
    v: int
    gw: str
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
    sent: _SentMs
    samples: list[_CheckedSample]


class PointMeta(msgspec.Struct, frozen=True):
    # at most the points table's columns (VARCHAR 64 / 32 / 16): PostgreSQL refused a longer one at commit
    metric: Annotated[str, msgspec.Meta(max_length=64)]
    unit: Annotated[str, msgspec.Meta(max_length=32)]
    kind: Annotated[str, msgspec.Meta(max_length=16)]
    name: str = ""  # a human label from the config (e.g. "1#变压器 进线")


class Meta(msgspec.Struct, frozen=True):
    """The gateway's catalogue: every point it will send, with its metric. Retained."""

    v: int
    gw: str
    sent: _SentMs
    points: dict[str, PointMeta]
    devices: dict[str, str] = {}  # device id -> human name


class Status(msgspec.Struct, frozen=True):
    v: int
    gw: str
    state: Literal["online", "offline"]
    sent: _SentMs
    agent: str = ""


class DeviceHealth(msgspec.Struct, frozen=True):
    up: bool | None  # None: not polled yet
    polls: int
    errors: int  # cycles in which the device did not answer
    late_cycles: int  # poll slots skipped because a cycle overran
    requests: int = 0  # Modbus requests sent (coalescing shows as requests per poll)


class Health(msgspec.Struct, frozen=True):
    """What the agent says about itself: is it keeping up, is anything piling up or lost."""

    v: int
    gw: str
    sent: _SentMs
    uptime_s: float
    devices: dict[str, DeviceHealth]
    buffer_batches: int
    buffer_samples: int
    buffer_oldest_ms: int | None
    dropped_samples: int  # dropped, ever, whatever the cause (dropped_by_cause)
    published: int
    acked: int
    counter_resets: int
    counter_rollovers: int
    deadband_suppressed: int
    # the disk buffer's own state (issue 21); defaults, so a health from an older agent still decodes
    buffer_state: str = "ok"  # "write_failing": the disk refuses writes; polls wait in memory (写入失败)
    buffer_error: str = ""  # the last write error while failing
    buffer_failing_since_ms: int | None = None
    buffer_write_failures: int = 0  # failed write attempts, ever (survives restarts)
    memory_samples: int = 0  # polled samples not on disk yet
    memory_limit_samples: int = 0  # past it, while writes fail, the oldest are dropped
    dropped_batches: int = 0  # seqs that will never be sent: gaps the completeness report counts
    # samples dropped, ever, by cause: buffer_full, memory_full, unwritten_at_stop (edge_agent/buffer.py LOSSES)
    dropped_by_cause: dict[str, int] = msgspec.field(default_factory=dict)
    # end-to-end acks (docs/decisions/0010): buffer_* above is what the platform has not confirmed, sent or not
    ack_state: str = "off"  # ok | waiting (no confirmation for mqtt.ack_timeout_s) | fallback (PUBACK alone) | off
    unacked_batches: int = 0  # sent and waiting for the platform's confirmation (at most mqtt.max_unacked)
    unacked_oldest_age_s: float | None = None  # age of the oldest batch not confirmed yet, since it was polled
    confirmed: int = 0  # batches the platform confirmed committed, since the agent started
    resent: int = 0  # batches sent again for want of a confirmation, since the agent started
    unconfirmed_deleted: int = 0  # batches deleted on the broker's PUBACK alone, ever (fallback / off)


# a commit group holds at most a few hundred messages; far more ranges is not an ack ingest wrote
MAX_ACK_RANGES = 10_000
_Seq = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Ack(msgspec.Struct, frozen=True):
    """Ingest -> gateway: these seqs are committed (docs/decisions/0010-end-to-end-ack.md)."""

    v: int
    gw: str
    seqs: list[tuple[int, int]]  # inclusive ranges, ascending, disjoint

    def covers(self, seq: int) -> bool:
        lo, hi = 0, len(self.seqs)
        while lo < hi:  # bisect on the ranges' ends: an ack of [1, 2^63) must not be walked seq by seq
            mid = (lo + hi) // 2
            if self.seqs[mid][1] < seq:
                lo = mid + 1
            else:
                hi = mid
        return lo < len(self.seqs) and self.seqs[lo][0] <= seq


class _CheckedAck(msgspec.Struct, frozen=True):
    v: int
    gw: str
    seqs: Annotated[list[tuple[_Seq, _Seq]], msgspec.Meta(min_length=1, max_length=MAX_ACK_RANGES)]


class _BatchSeq(msgspec.Struct):
    """Just a data batch's seq, to acknowledge a batch that failed the contract (stored as a dead letter)."""

    seq: _Seq


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Seqs as inclusive ranges, ascending and disjoint: [3, 1, 2, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out


class ContractError(ValueError):
    """A payload or topic that breaks the contract; the message says what and where."""


_batch_decoder = msgspec.json.Decoder(Batch)
_checked_batch_decoder = msgspec.json.Decoder(_CheckedBatch)
_meta_decoder = msgspec.json.Decoder(Meta)
_status_decoder = msgspec.json.Decoder(Status)
_health_decoder = msgspec.json.Decoder(Health)
_ack_decoder = msgspec.json.Decoder(_CheckedAck)
_batch_seq_decoder = msgspec.json.Decoder(_BatchSeq)
_encoder = msgspec.json.Encoder()


def check_id(kind: str, value: str) -> str:
    if not _ID.match(value):
        raise ContractError(f"{kind} id {value!r} must be 1-64 characters of A-Z a-z 0-9 _ -")
    return value


# gate: a park system's gate events (交通物流; format in docs/gate-events.md), not a gateway's data
Leaf = Literal["data", "status", "meta", "health", "gate", "ack"]
UPLINK_LEAVES: tuple[Leaf, ...] = ("data", "status", "meta", "health", "gate")  # from the park to the platform
DOWNLINK_LEAVES: tuple[Leaf, ...] = ("ack",)  # from the platform to a gateway
LEAVES = UPLINK_LEAVES + DOWNLINK_LEAVES


def topic(park: str, enterprise: str, gateway: str, leaf: Leaf) -> str:
    return f"{TOPIC_ROOT}/{park}/{enterprise}/{gateway}/{leaf}"


def parse_topic(t: str) -> tuple[str, str, str, str]:
    """``parkmon/v1/p/e/g/leaf`` -> (park, enterprise, gateway, leaf)."""
    parts = t.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise ContractError(f"topic {t!r} is not {TOPIC_ROOT}/<park>/<enterprise>/<gateway>/<leaf>")
    park, ent, gw, leaf = parts[2:]
    for kind, value in (("park", park), ("enterprise", ent), ("gateway", gw)):
        check_id(kind, value)
    if leaf not in LEAVES:
        raise ContractError(f"topic {t!r}: leaf {leaf!r} is not one of {', '.join(LEAVES)}")
    return park, ent, gw, leaf


def encode(obj: Batch | Meta | Status | Health | Ack) -> bytes:
    return _encoder.encode(obj)


def _decode(decoder: msgspec.json.Decoder[Any], payload: bytes, what: str) -> Any:
    try:
        obj = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise ContractError(f"{what}: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # msgspec raises the latter for a non-UTF-8 string
        raise ContractError(f"{what} is not valid JSON: {exc}") from None
    if obj.v != VERSION:
        raise ContractError(f"{what}: contract version {obj.v} is not supported (expected {VERSION})")
    return obj


_VALID_POINTS: set[str] = set()


def _remember_points(names: set[str]) -> bool:
    """True if every name is a valid point name; the valid ones are remembered (bounded)."""
    if len(_VALID_POINTS) > 1_000_000:
        _VALID_POINTS.clear()
    for n in names - _VALID_POINTS:
        if not _POINT.match(n):
            return False
        _VALID_POINTS.add(n)
    return True


def decode_batch(payload: bytes) -> Batch:
    """Decode and validate a data batch; every sample is checked, the error names the first bad one."""
    try:
        checked = _checked_batch_decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        pass  # say what is wrong in the contract's words, below
    else:
        names = {smp[0] for smp in checked.samples}
        if checked.v == VERSION and (names <= _VALID_POINTS or _remember_points(names)):
            return Batch(checked.v, checked.gw, checked.seq, checked.sent, checked.samples)
    batch: Batch = _decode(_batch_decoder, payload, "data batch")
    if not 0 <= batch.seq < 2**63:
        raise ContractError(f"data batch: seq {batch.seq} is not between 0 and 2^63-1")
    for i, (point, ts, value, q) in enumerate(batch.samples):
        if not _POINT.match(point):
            raise ContractError(f"data batch: samples[{i}] point {point!r} is not '<device>.<point>'")
        if not _TS_MIN <= ts < _TS_MAX:  # catches seconds sent as milliseconds, and garbage
            raise ContractError(f"data batch: samples[{i}] time {ts} is not epoch milliseconds "
                                "between 2000 and 3000")
        if not 0 <= q <= 255:
            raise ContractError(f"data batch: samples[{i}] quality {q} is not 0-255")
        if value is not None and value != value:  # NaN must travel as null + bad quality
            raise ContractError(f"data batch: samples[{i}] value is NaN; send null with a bad quality")
    try:  # the loose decode passed every check above: the strict one names what is left
        _checked_batch_decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise ContractError(f"data batch: {exc}") from None
    return batch


def decode_meta(payload: bytes) -> Meta:
    meta: Meta = _decode(_meta_decoder, payload, "meta")
    for key in meta.points:
        if not _POINT.match(key):
            raise ContractError(f"meta: point {key!r} is not '<device>.<point>'")
    for dev in meta.devices:  # the store registers each one as a device
        check_id("meta: device", dev)
    texts = [(f"point {k!r}", t) for k, pm in meta.points.items() for t in (pm.metric, pm.unit, pm.kind, pm.name)]
    for where, text in [*texts, *((f"device {d!r}", n) for d, n in meta.devices.items())]:
        if "\x00" in text:  # PostgreSQL text cannot hold it: the catalogue would fail to store
            raise ContractError(f"meta: {where} has a NUL character (\\u0000) in its text")
    return meta


def decode_status(payload: bytes) -> Status:
    status: Status = _decode(_status_decoder, payload, "status")
    return status


def decode_health(payload: bytes) -> Health:
    health: Health = _decode(_health_decoder, payload, "health")
    return health


def decode_ack(payload: bytes, gateway: str | None = None) -> Ack:
    """Decode an ack; ``gateway``: the gateway it must be for (its topic's). Ranges must be ascending and
    disjoint, each first <= last: anything else is not what ingest writes, and a gateway must not guess."""
    ack: _CheckedAck = _decode(_ack_decoder, payload, "ack")
    if gateway is not None and ack.gw != gateway:
        raise ContractError(f"ack: for gateway {ack.gw!r}, not {gateway!r}")
    prev = -1
    for i, (first, last) in enumerate(ack.seqs):
        if first > last:
            raise ContractError(f"ack: seqs[{i}] [{first}, {last}] ends before it starts")
        if first <= prev:
            raise ContractError(f"ack: seqs[{i}] [{first}, {last}] is not after the range before it")
        prev = last
    return Ack(ack.v, ack.gw, ack.seqs)


def batch_seq(payload: bytes) -> int | None:
    """The seq of a data payload that may break the contract elsewhere; None if it has no readable seq."""
    try:
        return _batch_seq_decoder.decode(payload).seq
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None
