"""The house rules a reader can rely on (docs/architecture.md): modules stay small enough to read whole, and
the database is reached only through the storage layer (import-linter checks the imports; this checks that
no code outside ingest/store reaches a Store's SQLAlchemy engine through an attribute)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("parkmon", "edge_agent", "ingest", "analytics", "dashboards", "simulators")
MAX_LINES = 400
# a protocol reads better whole: codecs and the simulators of a protocol's other side
WHOLE = {"parkmon/common/hj212.py"}
WHOLE_DIRS = ("simulators/", "ingest/store/migrations/")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py"))


def test_modules_stay_under_400_lines() -> None:
    long = {}
    for p in _modules():
        rel = p.relative_to(REPO).as_posix()
        if rel in WHOLE or rel.startswith(WHOLE_DIRS):
            continue
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            long[rel] = n
    assert long == {}, f"modules over {MAX_LINES} lines: split them by what they hold"


def test_no_engine_outside_the_storage_layer() -> None:
    reach = []
    for p in _modules():
        rel = p.relative_to(REPO).as_posix()
        if rel.startswith("ingest/store/"):
            continue
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            # store.engine, self.store.engine, request.app.state.store.engine (not the alert engine, nor the
            # simulated park's physics engine: other objects of that name)
            if isinstance(node, ast.Attribute) and node.attr == "engine" and "store" in ast.unparse(node.value):
                reach.append(f"{rel}:{node.lineno}")
    assert reach == [], "the store's engine reached outside ingest/store: add a named query to the storage layer"
