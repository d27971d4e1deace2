"""``parkmon indicators``: compute indicators from stored data and print them as JSON. One subcommand per
registered indicator (analytics/indicators/base.py), its options its parameters; ``all`` prints every
indicator of a month or year as the report has them, ``feed`` (re)computes the Grafana boards' hours."""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, ValidationError

from analytics.indicators.base import Context, Indicator, registered, why
from parkmon.common.env import default_db

if TYPE_CHECKING:
    from ingest.store import Store


def _ms(text: str, name: str) -> int:
    return int(_instant(name)(text).timestamp() * 1000)


def _instant(name: str) -> Callable[[str], datetime]:
    def parse(text: str) -> datetime:
        t = datetime.fromisoformat(text)
        if t.tzinfo is None:
            raise SystemExit(f"parkmon indicators: --{name} {text} has no UTC offset; add one, e.g. +08:00 or Z")
        return t

    return parse


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give days as YYYY-MM-DD") from None


def _options(parser: argparse.ArgumentParser, params: type[BaseModel]) -> None:
    """An option per parameter of the feed (``--field-name``); what is not given takes the model's default."""
    for name, f in params.model_fields.items():
        kind: Any = f.annotation
        if get_origin(kind) in (Union, types.UnionType):  # X | None: an optional X
            kind = next(a for a in get_args(kind) if a is not type(None))
        default = "" if f.is_required() or f.default_factory is not None or f.default is None else \
            f" (default: {f.default})"
        opts: dict[str, Any] = {"dest": name, "default": None, "required": f.is_required(),
                                "help": (f.description or "") + default}
        if kind is bool:
            parser.add_argument(f"--{name.replace('_', '-')}", action="store_true", **opts)
            continue
        if get_origin(kind) is Literal:
            opts["choices"] = list(get_args(kind))
        elif kind is AwareDatetime or (isinstance(kind, type) and issubclass(kind, datetime)):
            opts["type"] = _instant(name)
        elif isinstance(kind, type) and issubclass(kind, date):
            opts["type"] = _day
        elif kind in (int, float, str):
            opts["type"] = kind
        parser.add_argument(f"--{name.replace('_', '-')}", **opts)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="parkmon indicators", description="Indicators from stored data (指标计算)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    commands: dict[str, Indicator[Any]] = {}
    for ind in registered():
        if ind.command is None:  # answered with another (its companion)
            continue
        with_too = "".join(f" and {k}" for k in ind.companions)
        one = sub.add_parser(ind.command, help=f"{ind.name_en}{with_too} ({ind.name_zh})",
                             description=f"{ind.name_zh} {ind.name_en}: {ind.key}{with_too}, as JSON")
        one.add_argument("--db", default=default_db(), help="database URL")
        one.add_argument("--park", required=True)
        _options(one, ind.params)
        one.add_argument("--targets", default=None, help="YAML overriding the default targets")
        one.add_argument("--factors", default=None, help="YAML overriding factors (shape of analytics/factors.yaml)")
        commands[ind.command] = ind
    every = sub.add_parser("all", help="every indicator of a park for a month or a year, as the report has them "
                           "(全部指标)")
    every.add_argument("--db", default=default_db(), help="database URL")
    every.add_argument("--park", required=True)
    every.add_argument("--period", required=True, help="YYYY-MM (a month) or YYYY (a year), China calendar")
    every.add_argument("--targets", default=None, help="YAML overriding the default targets")
    feed = sub.add_parser("feed", help="(re)compute the hourly indicators the Grafana boards read "
                          "(indicator_hourly), e.g. after importing history (看板小时指标回填)")
    feed.add_argument("--db", default=default_db(), help="database URL")
    feed.add_argument("--park", action="append", default=None, help="this park only (repeatable; default: all)")
    feed.add_argument("--since", required=True, help="first hour, ISO 8601 with offset, e.g. 2026-01-01T00:00+08:00")
    args = ap.parse_args(argv)
    if args.cmd in commands:
        return _indicator(commands[args.cmd], args)
    return {"all": _all, "feed": _feed}[args.cmd](args)


def _answer(db: str, prefix: str, compute: Callable[[Store], Any]) -> int:
    """Open the store, compute, print the JSON; a refused input is one line on stderr and exit 2."""
    from ingest.store import open_store

    store = open_store(db)
    try:
        out = compute(store)
    except (LookupError, ValueError) as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _indicator(ind: Indicator[Any], args: argparse.Namespace) -> int:
    from analytics.factors import load_factors
    from analytics.targets import load_share_settings

    prefix = f"parkmon indicators {args.cmd}"
    given = {n: getattr(args, n) for n in ind.params.model_fields if getattr(args, n) is not None}

    def compute(store: Store) -> dict[str, Any]:
        try:
            p = ind.params.model_validate(given)
        except ValidationError as exc:
            raise ValueError(why(exc)) from None
        ctx = Context(share_settings=load_share_settings(args.targets) if args.targets else None,
                      factors=load_factors(args.factors) if args.factors else None)
        return ind.answer(store, args.park, p, ctx)

    return _answer(args.db, prefix, compute)


def _all(args: argparse.Namespace) -> int:
    from analytics.report.gather import park_report
    from analytics.targets import load_share_settings

    def compute(store: Store) -> dict[str, Any]:
        store.refresh_rollups()
        return park_report(store, args.park, args.period,
                           lambda s: print(f"parkmon indicators all: {s} …", file=sys.stderr, flush=True),
                           load_share_settings(args.targets) if args.targets else None)

    return _answer(args.db, "parkmon indicators all", compute)


def _feed(args: argparse.Namespace) -> int:
    from analytics.board_feed import BoardFeed
    from ingest.store import open_store

    since = _ms(args.since, "since")
    store = open_store(args.db)
    try:
        feed = BoardFeed(store)
        now = int(time.time() * 1000)
        parks = [p for p in store.parks() if args.park is None or p.key in args.park]
        if args.park and len(parks) != len(set(args.park)):
            print(f"parkmon indicators feed: unknown park among {', '.join(args.park)}", file=sys.stderr)
            return 2
        for info in parks:
            def progress(done: int, total: int, key: str = info.key) -> None:
                if done == total or done % 24 == 0:
                    print(f"\r{key}: {done}/{total} hours ({done / total:.0%})", end="", file=sys.stderr, flush=True)

            n = feed.feed_park(info, now, since, progress)
            print(f"\n{info.key}: {n} hours with data written", file=sys.stderr)
    finally:
        store.close()
    return 0
