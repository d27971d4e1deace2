"""Readings mirrors by URL scheme: a second home for readings (decision 0005). One module per kind."""

from __future__ import annotations

from ingest.store.base import ReadingsMirror
from parkmon.common.seams import resolve

MIRRORS: dict[str, str] = {
    "influxdb": "ingest.store.mirrors.influx:InfluxMirror",  # http
    "influxdbs": "ingest.store.mirrors.influx:InfluxMirror",  # https
}


def open_mirror(url: str) -> ReadingsMirror:
    scheme = url.split(":", 1)[0]
    if scheme not in MIRRORS:
        raise ValueError(f"mirror URL {url.split('@')[-1]!r}: scheme {scheme!r} is not one of {', '.join(MIRRORS)} "
                         "(e.g. influxdb://TOKEN@influx.example:8086/parkmon?org=park-ops)")
    mirror: ReadingsMirror = resolve(MIRRORS[scheme])(url)
    return mirror
