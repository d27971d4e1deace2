"""Sparkplug B payloads: the ``org.eclipse.tahu.protobuf.Payload`` schema, built at run time.

The schema (Eclipse Tahu's ``sparkplug_b.proto``, proto2) is written below as a descriptor - field names,
numbers and types as the specification gives them - and handed to ``protobuf``'s message factory: no protoc
step, no generated module to keep in step with the runtime's version (docs/decisions/0013). Only the
``google.protobuf`` runtime is needed.

``decode`` turns a payload into plain typed values (``SpPayload``/``SpMetric``); ``encode`` builds one (the
bridge's NCMD rebirth request, the tests' and the bench's own messages). A payload that is not the schema's
protobuf raises ``SparkplugError`` with what was wrong: the bridge keeps it as a dead letter.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_U32, _U64, _FLT, _DBL = _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_FLOAT, _F.TYPE_DOUBLE
_BOOL, _STR, _BYTES, _MSG = _F.TYPE_BOOL, _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_MESSAGE
_PKG = "org.eclipse.tahu.protobuf"
_P = f".{_PKG}.Payload"

# Sparkplug B data types (specification 3.0, section 6.4.16)
INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64 = 1, 2, 3, 4, 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT = 9, 10, 11, 12, 13, 14
UUID, DATASET, BYTES, FILE, TEMPLATE = 15, 16, 17, 18, 19
TYPE_NAMES = {INT8: "Int8", INT16: "Int16", INT32: "Int32", INT64: "Int64", UINT8: "UInt8", UINT16: "UInt16",
              UINT32: "UInt32", UINT64: "UInt64", FLOAT: "Float", DOUBLE: "Double", BOOLEAN: "Boolean",
              STRING: "String", DATETIME: "DateTime", TEXT: "Text", UUID: "UUID", DATASET: "DataSet",
              BYTES: "Bytes", FILE: "File", TEMPLATE: "Template"}
_SIGNED_BITS = {INT8: 8, INT16: 16, INT32: 32, INT64: 64}

# (name, number, label, type, type name of a message field, oneof index)
_Field = tuple[str, int, int, int, str, int | None]
_VALUES: list[_Field] = [  # the oneof "value" shared in shape by Parameter, DataSetValue and PropertyValue
    ("int_value", 0, _OPT, _U32, "", 0), ("long_value", 0, _OPT, _U64, "", 0),
    ("float_value", 0, _OPT, _FLT, "", 0), ("double_value", 0, _OPT, _DBL, "", 0),
    ("boolean_value", 0, _OPT, _BOOL, "", 0), ("string_value", 0, _OPT, _STR, "", 0)]


def _numbered(first: int, fields: list[_Field]) -> list[_Field]:
    return [(n, first + i, lab, t, tn, o) for i, (n, _, lab, t, tn, o) in enumerate(fields)]


# message name (nested under Payload) -> (fields, oneof names, extension range start or None)
_MESSAGES: dict[str, tuple[list[_Field], list[str], int | None]] = {
    "Template": ([("version", 1, _OPT, _STR, "", None), ("metrics", 2, _REP, _MSG, f"{_P}.Metric", None),
                  ("parameters", 3, _REP, _MSG, f"{_P}.Template.Parameter", None),
                  ("template_ref", 4, _OPT, _STR, "", None), ("is_definition", 5, _OPT, _BOOL, "", None)], [], 6),
    "Template.Parameter": ([("name", 1, _OPT, _STR, "", None), ("type", 2, _OPT, _U32, "", None),
                            *_numbered(3, _VALUES),
                            ("extension_value", 9, _OPT, _MSG, f"{_P}.Template.Parameter.ParameterValueExtension", 0)],
                           ["value"], None),
    "Template.Parameter.ParameterValueExtension": ([], [], 1),
    "DataSet": ([("num_of_columns", 1, _OPT, _U64, "", None), ("columns", 2, _REP, _STR, "", None),
                 ("types", 3, _REP, _U32, "", None), ("rows", 4, _REP, _MSG, f"{_P}.DataSet.Row", None)], [], 5),
    "DataSet.DataSetValue": ([*_numbered(1, _VALUES), ("extension_value", 7, _OPT, _MSG,
                                                        f"{_P}.DataSet.DataSetValue.DataSetValueExtension", 0)],
                             ["value"], None),
    "DataSet.DataSetValue.DataSetValueExtension": ([], [], 1),
    "DataSet.Row": ([("elements", 1, _REP, _MSG, f"{_P}.DataSet.DataSetValue", None)], [], 2),
    "PropertyValue": ([("type", 1, _OPT, _U32, "", None), ("is_null", 2, _OPT, _BOOL, "", None),
                       *_numbered(3, _VALUES),
                       ("propertyset_value", 9, _OPT, _MSG, f"{_P}.PropertySet", 0),
                       ("propertysets_value", 10, _OPT, _MSG, f"{_P}.PropertySetList", 0),
                       ("extension_value", 11, _OPT, _MSG, f"{_P}.PropertyValue.PropertyValueExtension", 0)],
                      ["value"], None),
    "PropertyValue.PropertyValueExtension": ([], [], 1),
    "PropertySet": ([("keys", 1, _REP, _STR, "", None), ("values", 2, _REP, _MSG, f"{_P}.PropertyValue", None)],
                    [], 3),
    "PropertySetList": ([("propertyset", 1, _REP, _MSG, f"{_P}.PropertySet", None)], [], 2),
    "MetaData": ([("is_multi_part", 1, _OPT, _BOOL, "", None), ("content_type", 2, _OPT, _STR, "", None),
                  ("size", 3, _OPT, _U64, "", None), ("seq", 4, _OPT, _U64, "", None),
                  ("file_name", 5, _OPT, _STR, "", None), ("file_type", 6, _OPT, _STR, "", None),
                  ("md5", 7, _OPT, _STR, "", None), ("description", 8, _OPT, _STR, "", None)], [], 9),
    "Metric": ([("name", 1, _OPT, _STR, "", None), ("alias", 2, _OPT, _U64, "", None),
                ("timestamp", 3, _OPT, _U64, "", None), ("datatype", 4, _OPT, _U32, "", None),
                ("is_historical", 5, _OPT, _BOOL, "", None), ("is_transient", 6, _OPT, _BOOL, "", None),
                ("is_null", 7, _OPT, _BOOL, "", None), ("metadata", 8, _OPT, _MSG, f"{_P}.MetaData", None),
                ("properties", 9, _OPT, _MSG, f"{_P}.PropertySet", None),
                *_numbered(10, _VALUES), ("bytes_value", 16, _OPT, _BYTES, "", 0),
                ("dataset_value", 17, _OPT, _MSG, f"{_P}.DataSet", 0),
                ("template_value", 18, _OPT, _MSG, f"{_P}.Template", 0),
                ("extension_value", 19, _OPT, _MSG, f"{_P}.Metric.MetricValueExtension", 0)], ["value"], None),
    "Metric.MetricValueExtension": ([], [], 1),
}
_PAYLOAD_FIELDS: list[_Field] = [
    ("timestamp", 1, _OPT, _U64, "", None), ("metrics", 2, _REP, _MSG, f"{_P}.Metric", None),
    ("seq", 3, _OPT, _U64, "", None), ("uuid", 4, _OPT, _STR, "", None), ("body", 5, _OPT, _BYTES, "", None)]
_MAX_FIELD = 536_870_912  # protobuf's "max" in an extension range (exclusive end)


def _fill(msg: descriptor_pb2.DescriptorProto, fields: list[_Field], oneofs: list[str], ext: int | None) -> None:
    for o in oneofs:
        msg.oneof_decl.add(name=o)
    for name, number, label, ftype, type_name, oneof in fields:
        f = msg.field.add(name=name, number=number, label=label, type=ftype)
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof
    if ext is not None:
        msg.extension_range.add(start=ext, end=_MAX_FIELD)


def _build() -> Any:
    fd = descriptor_pb2.FileDescriptorProto(name="sparkplug_b.proto", package=_PKG, syntax="proto2")
    payload = fd.message_type.add(name="Payload")
    _fill(payload, _PAYLOAD_FIELDS, [], 6)
    made: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path, (fields, oneofs, ext) in _MESSAGES.items():  # parents come before their nested messages
        parent_path, _, name = path.rpartition(".")
        parent = made[parent_path] if parent_path else payload
        made[path] = msg = parent.nested_type.add(name=name)
        _fill(msg, fields, oneofs, ext)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PKG}.Payload"))


Payload: Any = _build()  # the generated class: protobuf's dynamic messages carry no static types


class SparkplugError(ValueError):
    """A payload that is not a Sparkplug B protobuf, or breaks the specification; says what and where."""


Value = float | int | bool | str | bytes | None


@dataclass(slots=True)
class SpMetric:
    name: str | None
    alias: int | None
    timestamp: int | None  # epoch ms UTC
    datatype: int | None
    value: Value  # None: is_null, or a value type parkmon does not take (DataSet, Template)
    properties: dict[str, Value] = field(default_factory=dict)
    is_historical: bool = False


@dataclass(slots=True)
class SpPayload:
    timestamp: int | None
    seq: int | None
    metrics: list[SpMetric]
    uuid: str | None = None


def _signed(value: int, datatype: int | None) -> int:
    """Signed integers travel in the unsigned fields as two's complement; the width is the datatype's
    (an Int8 of -1 arrives as 255 from some encoders and as 4294967295 from others: both are -1)."""
    bits = _SIGNED_BITS.get(datatype or 0)
    if bits is None:
        return value
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _value(m: Any, datatype: int | None) -> Value:
    kind = m.WhichOneof("value")
    if kind is None or getattr(m, "is_null", False):
        return None
    if kind in ("int_value", "long_value"):
        return _signed(int(getattr(m, kind)), datatype)
    if kind in ("float_value", "double_value", "boolean_value", "string_value", "bytes_value"):
        v: Value = getattr(m, kind)
        return v
    return None  # DataSet, Template, PropertySet(List), extensions: not a reading


def _opt(m: Any, name: str) -> Any:
    return getattr(m, name) if m.HasField(name) else None


COMPRESSED = "SPBV1.0_COMPRESSED"  # Tahu's clients: the real payload deflated (or gzipped) in ``body``
_MAX_INFLATED = 64 * 1024 * 1024  # a compressed payload inflating past this is refused, not held in memory


def _inflate(msg: Any) -> bytes:
    algorithm = next((m.string_value for m in msg.metrics if m.name == "algorithm"), "DEFLATE").upper()
    if algorithm not in ("DEFLATE", "GZIP"):
        raise SparkplugError(f"compressed payload: algorithm {algorithm!r} is not DEFLATE or GZIP")
    d = zlib.decompressobj(zlib.MAX_WBITS | (16 if algorithm == "GZIP" else 0))
    try:
        out = d.decompress(msg.body, _MAX_INFLATED)
    except zlib.error as exc:
        raise SparkplugError(f"compressed payload: body does not inflate with {algorithm} ({exc})") from None
    if d.unconsumed_tail:
        raise SparkplugError(f"compressed payload: inflates past {_MAX_INFLATED} bytes")
    return out


def decode(payload: bytes, _nested: bool = False) -> SpPayload:
    msg = Payload()
    try:
        msg.ParseFromString(payload)
    except (DecodeError, RuntimeWarning) as exc:
        raise SparkplugError(f"not a Sparkplug B protobuf payload ({exc}); {len(payload)} bytes") from None
    if msg.uuid == COMPRESSED and not _nested:
        return decode(_inflate(msg), _nested=True)
    metrics = []
    for i, m in enumerate(msg.metrics):
        datatype = _opt(m, "datatype")
        props: dict[str, Value] = {}
        if m.HasField("properties"):
            ps = m.properties
            if len(ps.keys) != len(ps.values):
                raise SparkplugError(f"metric #{i} ({m.name or m.alias}): {len(ps.keys)} property keys but "
                                     f"{len(ps.values)} values")
            for k, pv in zip(ps.keys, ps.values, strict=True):
                props[k] = _value(pv, _opt(pv, "type"))
        metrics.append(SpMetric(_opt(m, "name"), _opt(m, "alias"), _opt(m, "timestamp"), datatype,
                                _value(m, datatype), props, bool(m.is_historical)))
    return SpPayload(_opt(msg, "timestamp"), _opt(msg, "seq"), metrics, _opt(msg, "uuid"))


_FIELD_FOR = {INT8: "int_value", INT16: "int_value", INT32: "int_value", UINT8: "int_value", UINT16: "int_value",
              UINT32: "int_value", INT64: "long_value", UINT64: "long_value", DATETIME: "long_value",
              FLOAT: "float_value", DOUBLE: "double_value", BOOLEAN: "boolean_value", STRING: "string_value",
              TEXT: "string_value", UUID: "string_value", BYTES: "bytes_value", FILE: "bytes_value"}


def encode(p: SpPayload) -> bytes:
    """The protobuf bytes of a payload (metric properties are left out: only the bridge's own NCMD, the tests'
    hand-made edge cases and the bench use this)."""
    msg = Payload()
    if p.timestamp is not None:
        msg.timestamp = p.timestamp
    if p.seq is not None:
        msg.seq = p.seq
    if p.uuid is not None:
        msg.uuid = p.uuid
    for sm in p.metrics:
        m = msg.metrics.add()
        for name in ("name", "alias", "timestamp", "datatype"):
            if getattr(sm, name) is not None:
                setattr(m, name, getattr(sm, name))
        if sm.value is None:
            m.is_null = True
        else:
            fname = _FIELD_FOR.get(sm.datatype or 0)
            if fname is None:
                raise SparkplugError(f"cannot encode a value of datatype {sm.datatype}")
            v = sm.value
            if fname in ("int_value", "long_value") and isinstance(v, int) and v < 0:
                v &= (1 << (32 if fname == "int_value" else 64)) - 1
            setattr(m, fname, v)
    out: bytes = msg.SerializeToString()
    return out
