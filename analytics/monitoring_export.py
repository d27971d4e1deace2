"""The key energy user's monthly figures (analytics/indicators/energy_monitoring.py) as files for the
provincial platform: CSV (one row per carrier and interval, Excel-friendly) or JSON, and the uploads behind
a seam, since each province's interface (GB/T 37947's platform interface, as each province implements it)
is not public: an uploader is one class registered in :data:`UPLOADERS`; parkmon ships ``directory`` (the
exchange folder a province's client or an SFTP job picks files up from).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from parkmon.common.seams import resolve

Format = Literal["csv", "json"]
HEADER = ["企业 enterprise", "能源品种 carrier", "名称 name", "单位 unit", "粒度 granularity", "开始 start",
          "结束 end", "数值 value", "状态 status"]
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def file_name(answer: dict[str, Any], fmt: Format) -> str:
    """``<park>_<enterprise>_<YYYY-MM>_energy.<fmt>``; the keys are checked (no path can be smuggled in)."""
    i = answer["inputs"]
    for what in ("park", "enterprise"):
        if not _NAME.match(str(i[what])):
            raise ValueError(f"{what} {i[what]!r} cannot name a file: letters, digits, '_', '.', '-' only")
    return f"{i['park']}_{i['enterprise']}_{i['month']}_energy.{fmt}"


def _rows(answer: dict[str, Any]) -> list[list[str]]:
    i = answer["inputs"]
    out = []
    for c in i["carriers"]:
        name = f"{c['name_zh']} {c['name_en']}"
        for gran, values, step in (("15min", c["quarters"], timedelta(minutes=15)), ("day", c["days"],
                                                                                   timedelta(days=1))):
            t = datetime.fromisoformat(c["first_quarter"])
            for v in values:
                out.append([i["enterprise"], c["carrier"], name, c["unit"], gran, t.isoformat(timespec="minutes"),
                            (t + step).isoformat(timespec="minutes"), "" if v is None else repr(round(v, 6)),
                            "ok" if v is not None else "missing"])
                t += step
        out.append([i["enterprise"], c["carrier"], name, c["unit"], "month", answer["period_start"][:16],
                    answer["period_end"][:16], "" if c["month"] is None else repr(round(c["month"], 6)),
                    "ok" if c["month"] is not None else "missing"])
    return out


def render(answer: dict[str, Any], fmt: Format) -> bytes:
    """The file's bytes. CSV: one table, UTF-8 with a BOM (so Excel shows the Chinese headers); the quality
    checks are in the JSON and printed by the command."""
    if fmt == "json":
        return json.dumps(answer, ensure_ascii=False, indent=1).encode()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(_rows(answer))
    return buf.getvalue().encode("utf-8-sig")


class Uploader(Protocol):
    """Delivers one file to a provincial platform; returns where it went, for the log."""

    def deliver(self, name: str, content: bytes) -> str: ...


class DirectoryUploader:
    """Writes into an exchange folder, atomically (a picker never sees half a file)."""

    def __init__(self, target: str) -> None:
        path = Path(target)
        if not path.is_dir():
            raise ValueError(f"upload folder {target!r} does not exist or is not a folder: create it, or name another")
        if not os.access(path, os.W_OK):
            raise ValueError(f"upload folder {target!r} is not writable by this user")
        self.path = path.resolve()

    def deliver(self, name: str, content: bytes) -> str:
        if not _NAME.match(name.rsplit(".", 1)[0]) or "/" in name:
            raise ValueError(f"file name {name!r} refused: letters, digits, '_', '.', '-' only")
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".part-")
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        final = self.path / name
        os.replace(tmp, final)
        return str(final)


# name -> "module:Class" taking one argument (the target: a folder, a URL); a province's is one more line
UPLOADERS: dict[str, str] = {"directory": "analytics.monitoring_export:DirectoryUploader"}


def uploader(kind: str, target: str) -> Uploader:
    if kind not in UPLOADERS:
        raise ValueError(f"no uploader {kind!r}; known: {', '.join(sorted(UPLOADERS))}")
    made: Uploader = resolve(UPLOADERS[kind])(target)
    return made
