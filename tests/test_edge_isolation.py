"""A gateway installs only parkmon[edge]: running the agent must import no server library."""

from __future__ import annotations

import subprocess
import sys

SERVER_LIBS = ["sqlalchemy", "fastapi", "psycopg", "influxdb_client", "grafana_client", "alembic", "uvicorn",
               "starlette"]


def test_edge_agent_imports_no_server_library() -> None:
    code = (
        "import sys\n"
        "import parkmon.cli, edge_agent.cli, edge_agent.agent, edge_agent.drivers.modbus\n"
        f"bad = [m for m in {SERVER_LIBS!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"edge agent pulled in server libraries: {out.stdout.strip()}"


def test_parkmon_edge_help_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "parkmon.cli", "edge", "check", "--help"],
                         capture_output=True, text=True, check=True)
    assert "validate the config" in out.stdout
