"""Readings mirrors by URL scheme: a second home for readings (decision 0005). One module per kind."""

from __future__ import annotations

import importlib

from ..store.base import ReadingsMirror

MIRRORS: dict[str, str] = {
    "influxdb": "ingest.mirrors.influx:InfluxMirror",  # http
    "influxdbs": "ingest.mirrors.influx:InfluxMirror",  # https
}


def open_mirror(url: str) -> ReadingsMirror:
    scheme = url.split(":", 1)[0]
    if scheme not in MIRRORS:
        raise ValueError(f"mirror URL {url.split('@')[-1]!r}: scheme {scheme!r} is not one of {', '.join(MIRRORS)} "
                         "(e.g. influxdb://TOKEN@influx.example:8086/parkmon?org=park-ops)")
    module, _, cls = MIRRORS[scheme].partition(":")
    mirror: ReadingsMirror = getattr(importlib.import_module(module), cls)(url)
    return mirror
