"""The house's layering is checked by import-linter (pyproject.toml, run by ./dev.sh test). This shows that
the check is real: on a copy of the source, a gateway module importing the store, or the store importing
the API, breaks the build with the contract's name and the offending import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("parkmon", "edge_agent", "ingest", "analytics", "dashboards", "simulators")
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    # the copy comes first on the path, ahead of the editable install's finder (appended to sys.meta_path)
    env = {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([str(LINT), "--no-cache", str(root / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not LINT.exists():
        pytest.skip("lint-imports is not installed (pip install -e .[dev])")
    root = tmp_path_factory.mktemp("house")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_house_as_it_is_keeps_every_contract(copy: Path) -> None:
    out = _lint(copy)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("edge_agent/wrong.py", "from ingest.store import open_store\n",
     "The gateway imports nothing server-side"),
    ("ingest/store/wrong.py", "from parkmon.api import app\n", "Layers only point down"),
    ("analytics/wrong.py", "import sqlalchemy\n", "Nothing outside the storage layer imports SQLAlchemy"),
    ("analytics/wrong2.py", "import fastapi\n", "Nothing below the API imports FastAPI"),
])
def test_a_wrong_import_breaks_the_build(copy: Path, module: str, line: str, contract: str) -> None:
    bad = copy / module
    bad.write_text(line, encoding="utf-8")
    try:
        out = _lint(copy)
    finally:
        bad.unlink()
    assert out.returncode != 0
    text = " ".join(out.stdout.split())  # the report wraps long lines
    assert contract in text
    assert module.removesuffix(".py").replace("/", ".") in text
