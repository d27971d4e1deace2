"""``parkmon dashboards push`` against a stand-in of Grafana's documented HTTP API (tests/grafana_api.py):
Grafana itself cannot run here. The stand-in refuses what Grafana refuses, so this checks that the
requests follow the documented dashboard, folder and data-source API, and that pushing is idempotent."""

from __future__ import annotations

import pytest

from dashboards.catalogue import DASHBOARDS, FOLDER_TITLE, FOLDER_UID, all_json
from dashboards.cli import main
from dashboards.sql_query import DATASOURCE_UID
from tests.grafana_api import GrafanaStandIn


def test_push_creates_then_changes_nothing_then_repairs(capsys: pytest.CaptureFixture[str]) -> None:
    with GrafanaStandIn() as g:
        argv = ["push", "--url", g.url, "--token", g.token, "--db-host", "db.internal:5432",
                "--db-password", "s3cret", "--timescaledb"]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert f"done: {len(DASHBOARDS)} created, 0 updated, 0 unchanged" in out
        assert "园区总览 Park overview" in out and "[5/5]" in out
        assert g.refused == [(m, p, s, r) for m, p, s, r in g.refused if s == 404 and m == "GET"]  # only look-ups
        assert g.folders[FOLDER_UID]["title"] == FOLDER_TITLE
        ds = g.datasources[DATASOURCE_UID]
        assert ds["type"] == "grafana-postgresql-datasource" and ds["jsonData"]["timescaledb"] is True
        assert ds["secureJsonData"] == {"password": "s3cret"} and ds["url"] == "db.internal:5432"
        ours = all_json()
        for m in DASHBOARDS:
            stored = g.dashboards[m.UID]
            assert stored["folderUid"] == FOLDER_UID and stored["version"] == 1
            assert stored["dashboard"] == {k: v for k, v in ours[m.UID].items() if k != "id"}

        # a second push: nothing written (no new versions in Grafana's history)
        posts = sum(1 for m, p in g.requests if m == "POST")
        assert main(argv[:5]) == 0
        assert f"0 created, 0 updated, {len(DASHBOARDS)} unchanged" in capsys.readouterr().out
        assert sum(1 for m, p in g.requests if m == "POST") == posts
        assert all(b["version"] == 1 for b in g.dashboards.values())

        # someone edited a board in the UI and renamed the folder: the push puts the code's version back
        g.dashboards["parkmon-park"]["dashboard"]["title"] = "edited by hand"
        g.dashboards["parkmon-park"]["version"] = 7
        g.folders[FOLDER_UID]["title"] = "renamed"
        assert main(argv[:5]) == 0
        assert "0 created, 1 updated, 4 unchanged" in capsys.readouterr().out
        assert g.dashboards["parkmon-park"]["dashboard"]["title"] == "园区总览 Park overview"
        assert g.dashboards["parkmon-park"]["version"] == 8 and g.folders[FOLDER_UID]["title"] == FOLDER_TITLE


def test_push_says_what_is_wrong(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GRAFANA_TOKEN", "GRAFANA_USER", "GRAFANA_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    with GrafanaStandIn() as g:
        assert main(["push", "--url", g.url, "--token", "wrong"]) == 1
        err = capsys.readouterr().err
        assert "refused the credentials (401)" in err and "Editor role" in err
        assert g.dashboards == {}
        assert main(["push", "--url", g.url]) == 2
        assert "no credentials" in capsys.readouterr().err
        assert main(["push", "--url", g.url, "--token", g.token]) == 0
        assert "no data source with uid 'parkmon-pg'" in capsys.readouterr().out  # warned, not failed
    assert main(["push", "--url", g.url, "--token", g.token]) == 1  # the stand-in has stopped
    assert "cannot reach Grafana" in capsys.readouterr().err
