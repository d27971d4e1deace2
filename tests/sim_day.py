"""A simulated park day in a store, through the store's own write path: the board tests' data.

The simulator runs offline (``simulators.engine.simulate``, one tick a minute) and every meter's value
goes in as the gateway would send it (catalogue first, then batches, the registry from the park
definition), so the rollups, the indicators and the dashboards' SQL read what a real park would have.
The ground-truth log stays beside it for the expected values.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ingest.store import Store
from ingest.store.base import IncomingBatch
from ingest.store.records import registry
from parkmon.common import metrics, wire
from simulators.definition import PROFILES, load_definition, parse_definition
from simulators.engine import simulate
from simulators.ground_truth import GroundTruth
from simulators.park_office import registry_doc
from simulators.registers import profile_points

MINUTE = 60_000


def load_day(store: Store, start_ms: int, tmp: Path, hours: int = 24, seed: int = 11) -> tuple[GroundTruth, Any]:
    spec = parse_definition(load_definition())
    simulate(spec, seed=seed, sim_start_ms=start_ms, step_s=60, steps=hours * 60 + 1,
             ground_truth_path=tmp / "gt.db")
    gt = GroundTruth(tmp / "gt.db")
    info = spec.park
    store.upsert_park(info.key, info.name_zh, info.name_en, info.park_class, info.region)
    registry.load(store, registry.RegistryFile.model_validate(registry_doc(spec)), "test")
    kinds = {(e.key, d.id): d.kind for e in spec.enterprises for d in e.devices}
    point_meta: dict[tuple[str, str], wire.PointMeta] = {}
    for kind in set(kinds.values()):
        for p in profile_points(PROFILES[kind]):
            m = metrics.get(p.metric)
            point_meta[(kind, p.name)] = wire.PointMeta(p.metric, m.unit, m.kind.value, p.label)
    per_ent: dict[str, dict[int, list[tuple[str, int, float | None, int]]]] = defaultdict(lambda: defaultdict(list))
    catalogue: dict[str, dict[str, wire.PointMeta]] = defaultdict(dict)
    for ent, dev, point in gt.points():
        meta = point_meta.get((kinds[(ent, dev)], point))
        if meta is None:
            continue  # a physics value the device's register map does not expose
        key = f"{dev}.{point}"
        catalogue[ent][key] = meta
        for ts, value, _reg in gt.values(ent, dev, point):
            per_ent[ent][ts // (10 * MINUTE)].append((key, ts, value, 0))
    for ent, chunks in per_ent.items():
        gw = f"gw-{ent}"
        store.upsert_meta(info.key, ent, gw, wire.Meta(1, gw, start_ms, catalogue[ent]))
        batches = [IncomingBatch(info.key, ent, gw, wire.Batch(1, gw, i + 1, chunk[0][1], chunk), chunk[0][1])
                   for i, (_k, chunk) in enumerate(sorted(chunks.items()))]
        store.write_batches(batches)
    store.refresh_rollups()
    return gt, spec
