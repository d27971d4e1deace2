"""Create or update parkmon's folder, data source and dashboards in a running Grafana, by uid.

Through grafana-client, on Grafana's documented HTTP API: ``GET/POST/PUT /api/folders``,
``GET /api/datasources/uid/:uid`` + ``POST /api/datasources`` / ``PUT /api/datasources/uid/:uid``,
``GET /api/dashboards/uid/:uid`` and ``POST /api/dashboards/db`` with ``overwrite``. Idempotent: a
dashboard whose stored model already equals ours is left alone (no new version in Grafana's history).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.catalogue import DASHBOARDS, FOLDER_TITLE, FOLDER_UID, all_json
from dashboards.sql_query import DATASOURCE_UID, PG_TYPE

_VOLATILE = ("id", "version")  # Grafana's bookkeeping, not ours


class PushError(RuntimeError):
    """What went wrong, in words an operator can act on."""


@dataclass(frozen=True)
class Database:
    """How Grafana reaches PostgreSQL (its view of the network, not ours)."""

    host: str
    database: str
    user: str
    password: str
    sslmode: str = "disable"
    timescaledb: bool = False


def datasource_body(db: Database) -> dict[str, Any]:
    return {"name": "parkmon PostgreSQL", "type": PG_TYPE, "uid": DATASOURCE_UID, "access": "proxy",
            "url": db.host, "user": db.user, "isDefault": True,
            "jsonData": {"database": db.database, "sslmode": db.sslmode, "postgresVersion": 1500,
                         "timescaledb": db.timescaledb, "timeInterval": "1m"},
            "secureJsonData": {"password": db.password}}


def _missing(exc: GrafanaException) -> bool:
    return isinstance(exc, GrafanaClientError) and exc.status_code == 404


def _same(stored: dict[str, Any], ours: dict[str, Any]) -> bool:
    strip = {k: v for k, v in stored.items() if k not in _VOLATILE}
    return strip == {k: v for k, v in ours.items() if k not in _VOLATILE}


def push(url: str, credential: str | tuple[str, str] | None, db: Database | None = None,
         say: Callable[[str], None] = print, timeout: float = 10.0) -> dict[str, str]:
    """Push everything; returns uid -> created | updated | unchanged."""
    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout)
    try:
        return _push(api, db, say)
    except GrafanaException as exc:
        if exc.status_code in (401, 403):
            raise PushError(f"Grafana at {url} refused the credentials ({exc.status_code}); give an API token of "
                            "a service account with the Editor role (--token or GRAFANA_TOKEN), or --user/--password"
                            ) from None
        if exc.status_code == 0:
            raise PushError(f"cannot reach Grafana at {url}: {exc.message}; check --url and that Grafana runs"
                            ) from None
        raise PushError(f"Grafana at {url} answered {exc.status_code}: {exc.message}") from None
    except OSError as exc:  # the HTTP library's connection errors (refused, DNS, TLS) are OSErrors
        raise PushError(f"cannot reach Grafana at {url}: {exc}; check --url and that Grafana runs") from None


def _push(api: GrafanaApi, db: Database | None, say: Callable[[str], None]) -> dict[str, str]:
    _datasource(api, db, say)
    try:
        folder = api.folder.get_folder(FOLDER_UID)
        if folder.get("title") != FOLDER_TITLE:
            api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
            say(f"folder   {FOLDER_TITLE} (renamed)")
    except GrafanaException as exc:
        if not _missing(exc):
            raise
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        say(f"folder   {FOLDER_TITLE} (created)")
    done: dict[str, str] = {}
    boards = all_json()
    for i, m in enumerate(DASHBOARDS, 1):
        ours = boards[m.UID]
        try:
            stored = api.dashboard.get_dashboard(m.UID)
        except GrafanaException as exc:
            if not _missing(exc):
                raise
            stored = None
        if stored is not None and _same(stored.get("dashboard", {}), ours) \
                and stored.get("meta", {}).get("folderUid") == FOLDER_UID:
            done[m.UID] = "unchanged"
        else:
            body = {"dashboard": {**ours, "id": None}, "folderUid": FOLDER_UID, "overwrite": True,
                    "message": "parkmon dashboards push"}
            api.dashboard.update_dashboard(body)
            done[m.UID] = "updated" if stored is not None else "created"
        say(f"[{i}/{len(DASHBOARDS)}] {done[m.UID]:<9} {m.TITLE_ZH} {m.TITLE_EN}  /d/{m.UID}")
    return done


def _datasource(api: GrafanaApi, db: Database | None, say: Callable[[str], None]) -> None:
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        exists = True
    except GrafanaException as exc:
        if not _missing(exc):
            raise
        exists = False
    if db is None:
        if not exists:
            say(f"warning: Grafana has no data source with uid {DATASOURCE_UID!r}; the boards will show no data "
                "until it exists (pass --db-host … to create it, or mount deploy/grafana/provisioning)")
        return
    body = datasource_body(db)
    if exists:
        api.client.PUT(f"/datasources/uid/{DATASOURCE_UID}", json=body)
        say(f"source   {DATASOURCE_UID} → {db.host}/{db.database} (updated)")
    else:
        api.datasource.create_datasource(body)
        say(f"source   {DATASOURCE_UID} → {db.host}/{db.database} (created)")
