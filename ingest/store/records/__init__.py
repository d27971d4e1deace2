"""The six systems' records no meter gives (decision 0006), in the storage layer beside the readings: one
module per record type — its tables, its input models, its operations (each taking the Store, in its own
transaction, audited in it) with their HTTP surface, and its part of the systems panel (spec.py says
what a record type declares). The registry of devices (registry.py) and what the record types share
(base.py) sit beside them.

Adding a record type is its module, its Alembic migration and one line in :data:`RECORD_TYPES`: the API
serves its operations (parkmon/api/records.py) and the systems panel and coverage include it.
"""

from __future__ import annotations

from ingest.store.records.spec import RecordType
from parkmon.common.seams import resolve

# key -> "module:RecordType", in the order the API lists them; modules are imported when first asked for
RECORD_TYPES: dict[str, str] = {
    "safety": "ingest.store.records.safety:RECORD_TYPE",
    "hazwaste": "ingest.store.records.hazwaste:RECORD_TYPE",
    "logistics": "ingest.store.records.logistics:RECORD_TYPE",
    "economy": "ingest.store.records.economy:RECORD_TYPE",
    "services": "ingest.store.records.services:RECORD_TYPE",
    "green_power": "ingest.store.records.green_power:RECORD_TYPE",
    "solid_waste": "ingest.store.records.solid_waste:RECORD_TYPE",
}


def record_types() -> list[RecordType]:
    """The registered record types; ValueError naming an entry that is not one."""
    out = []
    for key, target in RECORD_TYPES.items():
        found = resolve(target)
        if not isinstance(found, RecordType):
            raise ValueError(f"record type {key!r}: {target} is not an ingest.store.records.spec.RecordType")
        out.append(found)
    return out
