"""The ``parkmon`` command. Each subcommand lives with its package and is imported only when used,
so ``parkmon edge`` runs on a gateway that installed ``parkmon[edge]`` alone."""

from __future__ import annotations

import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("parkmon.demo:main", "run a whole simulated park end to end (一键演示)"),
    "edge": ("edge_agent.cli:main", "gateway agent: run / check / poll (边缘采集网关)"),
    "sim": ("simulators.cli:main", "simulated park of Modbus devices (园区仿真)"),
    "ingest": ("ingest.cli:main", "MQTT -> database ingest (数据接入)"),
    "api": ("parkmon.api.cli:main", "HTTP API server (接口服务)"),
    "import": ("ingest.importer:main", "historical readings from CSV (历史数据导入)"),
    "records": ("ingest.store.records.cli:main", "registry and six-systems records: load, import (登记与业务数据)"),
    "indicators": ("analytics.cli:main", "compute indicators from stored data (指标计算)"),
    "energy-monitoring": ("analytics.monitoring_cli:main", "key energy user's 15-min/day/month figures: export, "
                          "upload (重点用能单位在线监测)"),
    "report": ("analytics.report.cli:main", "monthly / yearly report, Excel and PDF (园区月报/年报)"),
    "dashboards": ("dashboards.cli:main", "Grafana dashboards: build, provision, push (看板)"),
}


def _usage() -> str:
    lines = ["usage: parkmon <command> [options]    (parkmon <command> --help for more)", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def _guard_api(argv: list[str]) -> None:
    """``parkmon api``'s secrets, checked here before its own command parses them (parkmon/api/cli.py):
    the database URL's password kept out of the logs; with PARKMON_ENV=production a default or weak one,
    or serving without authentication, refused (parkmon/common/secrecy.py, docs/security.md)."""
    import argparse

    from parkmon.common.secrecy import check_production, protect_logs, url_checks

    ap = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ap.add_argument("--db", default=None)
    ap.add_argument("--no-auth", action="store_true")
    known, _ = ap.parse_known_args(argv)
    protect_logs(urls=[known.db])
    if argv[:1] != ["token"]:
        check_production("parkmon api", url_checks("--db", known.db),
                         ["--no-auth: the API would serve every park without a token"] if known.no_auth else [])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"parkmon: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if name == "api":
        _guard_api(rest)
    elif name == "demo":  # exempt from production's checks, and so are the gateways it starts
        os.environ["PARKMON_ENV"] = "development"
    target, _ = COMMANDS[name]
    module, _, func = target.partition(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        print(f"parkmon {name}: needs a library that is not installed ({exc.name}); "
              f"install the server side with: pip install 'parkmon[server]'", file=sys.stderr)
        return 2
    result: int = getattr(mod, func)(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
