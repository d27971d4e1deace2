"""Hypothesis on the loaders of hand-written files (issue 10, "bad input everywhere"): the gateway config
(``edge_agent.config``), the alert rules (``analytics.alerts.rules``) and the park registry
(``ingest.store.records.registry``). Valid documents (the shipped examples, the simulator's gateway configs)
with a value replaced, a key dropped or added, random documents and random or mutated file text are
either loaded or refused with the loader's own error (ConfigError, ValueError, RecordError), whose
message starts with the file's name and then says where; never another exception."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.alerts.rules import DEFAULT_RULES, parse_rules
from edge_agent.config import AgentConfig, ConfigError, load_config, parse_config
from ingest.store.records.base import RecordError
from ingest.store.records.registry import RegistryFile, read_file
from simulators.definition import DEFAULT_PARK, load_definition, parse_definition
from simulators.edge_configs import edge_configs

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parent.parent


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


GW = {"park": "demo", "enterprise": "e01", "id": "gw1"}


def _gateway_seeds() -> list[dict[str, Any]]:
    spec = parse_definition(load_definition())
    sim = edge_configs(spec, {e.key: 5020 + i for i, e in enumerate(spec.enterprises)}, "127.0.0.1", 1883, "/tmp")
    drivers = {"gateway": GW, "devices": [  # one device of every other driver, and an upstream platform
        {"id": "rtu", "driver": "modbus_rtu", "serial": {"device": "/dev/ttyUSB0", "baudrate": 9600},
         "points": [{"name": "v", "metric": "elec.voltage", "address": 0, "type": "float32"}]},
        {"id": "ua", "driver": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840/",
         "points": [{"name": "p", "metric": "elec.active_power", "node_id": "ns=2;s=Meter.Power"}]},
        {"id": "m645", "driver": "dlt645", "meter_address": "398192000337",
         "points": [{"name": "imp", "metric": "elec.import.energy", "di": "00010000"}]},
        {"id": "cems1", "driver": "hj212", "port": 9212, "mn": "MN0001", "pw": "123456", "st": "31"},
        {"id": "sub110", "driver": "iec104", "host": "10.0.0.5", "station_utc_offset_h": 8,
         "points": [{"name": "p", "metric": "elec.active_power", "ioa": 16385}]}],
        "hj212_upstream": [{"host": "10.0.0.1", "port": 9000, "mn": "MN0001", "pw": "123456", "st": "31",
                            "device": "cems1"}]}
    return [_load_yaml(ROOT / "deploy/gateway/gateway.example.yaml"), *sim.values(), drivers]


GATEWAYS = _gateway_seeds()
RULES = _load_yaml(DEFAULT_RULES)
REGISTRY = _load_yaml(DEFAULT_PARK)
for _doc in GATEWAYS:  # the seeds are valid: the fuzz starts from documents that load
    parse_config(_doc)
parse_rules(RULES)
RegistryFile.model_validate(REGISTRY)

# values a hand-edited file may hold where another was meant
ODD_TEXT = ["", " ", "\x00", "a\nb", "../../deploy/gateway/gateway.example", "sim_grid_meter", "é", "1e999", "-1",
            "null", "0x10", "2024-13-45", "ns=2;s=X", "opc.tcp://", "00010000", "398192000337", "31", "*", "{}"]
# keys these files use: an extra key is more often one of them, in the wrong place or with a wrong value
KEYS = ["gateway", "devices", "points", "profile", "name", "id", "metric", "driver", "type", "address", "serial",
        "rules", "kind", "threshold", "park", "enterprises", "key", "system"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70), st.floats(),
                    st.sampled_from(ODD_TEXT), st.text(max_size=12))
keys = st.sampled_from(KEYS) | st.text(max_size=6)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=8)


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document: keys of mappings, indexes of lists."""
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*at, i))
    return out


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_copy(v) for v in doc]
    return doc


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A seed with one to three places replaced by another value, deleted, or given an extra key."""
    doc = _copy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
        paths = _paths(doc)
        if action == "extra":  # a key added to a mapping, an item to a list
            paths = [p for p in paths if isinstance(_at(doc, p), dict | list)] or [()]
            node = _at(doc, draw(st.sampled_from(paths)))
            if isinstance(node, dict):
                node[draw(keys)] = draw(values)
            elif isinstance(node, list):
                node.append(draw(values))
            continue
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(values) if draw(st.integers(0, 9)) == 0 else doc
            continue
        parent = _at(doc, path[:-1])
        if action == "replace":
            parent[path[-1]] = draw(values)
        else:
            del parent[path[-1]]
    return doc


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _refused_well(exc: Exception, source: str) -> None:
    """The message names the file first (then, for a document that parsed, each problem with its place:
    "  - device 'grid', point 'p', field scale: why"; "rules.yaml: rule 2 (id).threshold: why")."""
    text = str(exc)
    assert text.startswith(f"{source}: ") and len(text) > len(source) + 5, text


def _load(fn: Callable[[], Any], error: type[Exception], source: str) -> Any:
    try:
        return fn()
    except error as exc:
        _refused_well(exc, source)
        return None


# ---- the gateway config --------------------------------------------------------------------------
DEVICES = [d for g in GATEWAYS for d in g["devices"]]  # where most of the loader's logic is: one device mutated
# the loader's own code before pydantic: a profile's points merged with the device's (any value for either)
PROFILED = st.fixed_dictionaries({"id": st.just("m"), "profile": st.sampled_from(sorted(
    p.stem for p in (ROOT / "edge_agent/profiles").glob("*.yaml"))) | scalars}, optional={"points": values})


@FUZZ
@given(mutated(GATEWAYS) | st.dictionaries(st.sampled_from(["gateway", "mqtt", "devices", "publish", "x"]), values))
def test_gateway_config_loads_or_says_where_it_is_wrong(doc: Any) -> None:
    if isinstance(doc, dict):
        got = _load(lambda: parse_config(doc, "gw.yaml"), ConfigError, "gw.yaml")
        assert got is None or isinstance(got, AgentConfig)


@FUZZ
@given(mutated(DEVICES) | PROFILED)
def test_a_device_loads_or_says_where_it_is_wrong(device: Any) -> None:
    got = _load(lambda: parse_config({"gateway": GW, "devices": [device]}, "gw.yaml"), ConfigError, "gw.yaml")
    assert got is None or isinstance(got, AgentConfig)


def _text_mutations(text: str) -> st.SearchStrategy[bytes]:
    """The file with a slice replaced by odd text (broken indentation, quotes, tabs, NUL, not UTF-8), or the
    value after a "key: " or "," typed by hand (an impossible date, a huge number, an unclosed quote)."""
    data = text.encode()
    odd = st.sampled_from([b"", b"\t", b":", b"- ", b"'", b'"', b"{", b"[", b"\n  ", b"&a", b"*a", b"!!python/none",
                           b"2024-13-45", b"2025-02-30 25:61", b"1e999", b"9" * 30, b".nan", b"~", b"\x00", b"\xff",
                           b"\xef\xbb\xbf"]) | st.text(max_size=5).map(lambda s: s.encode("utf-8", "surrogatepass"))
    values_at = [m.end() for m in re.finditer(rb": |, ?", data)]

    def value_replaced(at: int, new: bytes) -> bytes:
        end = at + len(re.findall(rb"^[^,}\n]*", data[at:])[0])
        return data[:at] + new + data[end:]

    return st.one_of(st.tuples(st.integers(0, len(data)), st.integers(0, 40), odd)
                     .map(lambda t: data[:t[0]] + t[2] + data[t[0] + t[1]:]),
                     st.builds(value_replaced, st.sampled_from(values_at), odd))


def _dumped(doc: Any) -> bytes:
    return yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass")


EXAMPLE_TEXT = (ROOT / "deploy/gateway/gateway.example.yaml").read_text(encoding="utf-8")


@FUZZ
@given(st.one_of(_text_mutations(EXAMPLE_TEXT), mutated(GATEWAYS).map(_dumped), st.binary(max_size=60)))
def test_gateway_config_file_loads_or_says_where_it_is_wrong(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gw.yaml"
        path.write_bytes(data)
        got = _load(lambda: load_config(path), ConfigError, str(path))
        assert got is None or isinstance(got, AgentConfig)


# ---- alert rules -----------------------------------------------------------------------------------
@FUZZ
@given(mutated([RULES]) | values)
def test_alert_rules_load_or_say_which_rule_and_field(doc: Any) -> None:
    _load(lambda: parse_rules(doc, "rules.yaml"), ValueError, "rules.yaml")


# ---- the park registry -----------------------------------------------------------------------------
REGISTRY_CSV = ("enterprise,enterprise_name,device,device_name,kind,system,expected,production\n"
                "e01,化工,grid,关口表,grid_meter,,true,false\ne01,化工,r101,反应釜,pressure_vessel,safety,1,是\n")


@FUZZ
@given(st.one_of(mutated([REGISTRY]).map(lambda d: ("park.yaml", _dumped(d))),
                 _text_mutations(DEFAULT_PARK.read_text(encoding="utf-8")).map(lambda t: ("park.yaml", t)),
                 _text_mutations(REGISTRY_CSV).map(lambda t: ("park.csv", t)),
                 st.tuples(st.sampled_from(["park.yaml", "park.csv"]), st.binary(max_size=60))))
def test_registry_file_loads_or_says_what_is_wrong(named: tuple[str, bytes]) -> None:
    name, data = named
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        got = _load(lambda: read_file(path), RecordError, str(path))
        assert got is None or isinstance(got, RegistryFile)
