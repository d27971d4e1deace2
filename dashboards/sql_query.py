"""Grafana's PostgreSQL query as a dataquery of Grafana's own SDK.

grafana-foundation-sdk ships query builders for Prometheus, Loki and others but none for the SQL
sources, so this module adds one the way the SDK's generated variants are made: a ``Dataquery`` with
``to_json``/``from_json``, a builder, and a registration with the SDK's runtime so that
``Dashboard.from_json`` turns our targets back into :class:`SqlQuery` (the round-trip the tests check).
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

# Grafana ≥ 10.2 names its built-in PostgreSQL plugin so; dashboards provisioned with this type and the
# uid below find the data source deploy/grafana/provisioning/datasources/parkmon.yaml creates.
PG_TYPE = "grafana-postgresql-datasource"
DATASOURCE_UID = "parkmon-pg"
DATASOURCE = DataSourceRef(type_val=PG_TYPE, uid=DATASOURCE_UID)

Format = Literal["time_series", "table"]


class SqlQuery(cogvariants.Dataquery):
    def __init__(self, ref_id: str = "A", raw_sql: str = "", fmt: Format = "time_series",
                 datasource: DataSourceRef | None = None, hide: bool | None = None) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format: Format = fmt
        self.datasource = datasource or DATASOURCE
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"refId": self.ref_id, "datasource": self.datasource.to_json(),
                                  "rawSql": self.raw_sql, "format": self.format,
                                  "rawQuery": True, "editorMode": "code"}
        if self.hide is not None:
            out["hide"] = self.hide
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(ref_id=str(data.get("refId", "A")), raw_sql=str(data.get("rawSql", "")),
                   fmt="table" if data.get("format") == "table" else "time_series",
                   datasource=DataSourceRef.from_json(ds) if isinstance(ds, dict) else None,
                   hide=data.get("hide"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqlQuery) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value


class Sql(cogbuilder.Builder[SqlQuery]):
    """``Sql("SELECT …").format("table").ref_id("B")``"""

    def __init__(self, raw_sql: str) -> None:
        self._internal = SqlQuery(raw_sql=raw_sql)

    def build(self) -> SqlQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def format(self, fmt: Format) -> Self:
        self._internal.format = fmt
        return self

    def table(self) -> Self:
        return self.format("table")


def register() -> None:
    """Teach the SDK's runtime to decode PostgreSQL targets (also under the pre-10.2 type name)."""
    for ident in (PG_TYPE, "postgres"):
        cogruntime.register_dataquery_variant(cogruntime.DataqueryConfig(identifier=ident,
                                                                          from_json_hook=SqlQuery.from_json))


register()
