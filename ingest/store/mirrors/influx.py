"""InfluxDB 2 mirror of readings, through the official influxdb-client.

URL: ``influxdb://TOKEN@host:8086/BUCKET?org=ORG`` (``influxdbs://`` for HTTPS). Each sample becomes
one line of measurement ``readings`` with tags park, enterprise, device, point, fields ``value``
(float; left out when the value is null, so a gap stays a gap) and ``quality`` (integer), at
millisecond precision. The same series and time overwrite in InfluxDB, so a redelivered batch
writes the same line again and doubles nothing.

Writes are synchronous and happen before the SQL commit (decision 0005): a write that still fails
after the retries raises :class:`StoreError`, the batch is not committed or acked, ingest retries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import parse_qs, unquote, urlsplit

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from urllib3 import Retry
from urllib3.exceptions import HTTPError

from ingest.store.base import MirrorRow, StoreError

log = logging.getLogger(__name__)
CHUNK = 5000  # lines per request
EXAMPLE = "influxdb://TOKEN@influx.example:8086/parkmon?org=park-ops"


class InfluxMirror:
    def __init__(self, url: str, retries: int = 3, backoff_s: float = 0.5, timeout_ms: int = 10_000) -> None:
        u = urlsplit(url)
        token, bucket, org = unquote(u.username or ""), u.path.strip("/"), parse_qs(u.query).get("org", [""])[0]
        missing = [n for n, v in (("token", token), ("host", u.hostname), ("bucket", bucket), ("org", org)) if not v]
        if missing:
            raise ValueError(f"InfluxDB mirror URL lacks {', '.join(missing)}: write it as {EXAMPLE}")
        self.endpoint = f"{'https' if u.scheme == 'influxdbs' else 'http'}://{u.hostname}:{u.port or 8086}"
        self.name = f"influxdb {self.endpoint}/{bucket}"  # never the token
        self.bucket, self.org = bucket, org
        # urllib3 retries 429/5xx and connection errors with back-off inside one write call
        retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff_s,
                      status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None, raise_on_status=False)
        self._client = InfluxDBClient(url=self.endpoint, token=token, org=org, timeout=timeout_ms, retries=retry)
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    @staticmethod
    def point(r: MirrorRow) -> Point:
        p = (Point("readings").tag("park", r.park).tag("enterprise", r.enterprise).tag("device", r.device)
             .tag("point", r.point).field("quality", int(r.quality)).time(r.ts_ms, WritePrecision.MS))
        if r.value is not None:
            p.field("value", float(r.value))
        return p

    def write(self, rows: Sequence[MirrorRow]) -> None:
        for i in range(0, len(rows), CHUNK):
            points = [self.point(r) for r in rows[i:i + CHUNK]]
            try:
                self._write.write(self.bucket, self.org, points, write_precision=WritePrecision.MS)
            except ApiException as exc:
                hint = {401: "check the token", 403: "the token may not write to this bucket",
                        404: "create the bucket or fix its name", 400: "InfluxDB refused the lines"}.get(
                            int(exc.status or 0), "InfluxDB is unavailable")
                log.error("%s: HTTP %s (%s): %s", self.name, exc.status, hint, (exc.body or "")[:300])
                raise StoreError(f"{self.name} answered HTTP {exc.status} ({hint}): {(exc.body or '')[:200]}") from exc
            except (HTTPError, OSError) as exc:
                raise StoreError(f"{self.name} unreachable: {exc}") from exc

    def close(self) -> None:
        self._client.close()
