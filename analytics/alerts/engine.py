"""The alert engine: rules applied to every committed batch (ingest calls :meth:`AlertEngine.on_commit`
after each commit) and, on a timer (:meth:`tick`), to silence, escalation, validated hourly pollutant
averages and the indicators. Each transition is committed with its outbox rows before anyone is told;
the dispatcher (analytics.alerts.dispatch) delivers from there.

Trackers live in memory; firing alerts are restored from the database at start, so a restart neither
repeats nor forgets them. A condition that was only pending when the platform stopped starts its
duration again (said in docs/alerts.md).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from analytics.alerts.actions import ANNOUNCER, Subject, new_alert
from analytics.alerts.rules import Rule, load_rules, one_level_up, parse_rules
from analytics.alerts.state import Tracker, Transition
from analytics.alerts.watched import PointCtx, WatchedPoints
from analytics.indicators.base import Context, load, status_for
from ingest.store import Store, alert_rules
from ingest.store import alerts as rows
from ingest.store.base import IncomingBatch
from parkmon.common.clock import CHINA, HOUR_MS
from parkmon.common.metrics import METRICS
from parkmon.common.outage import Outage

log = logging.getLogger("parkmon.alerts")
Judged = list[tuple[Rule, Subject, Transition, float | None]]  # what a pass decided; float: the threshold
# the live thread's window from a commit (start()): room for another writer's commit in flight (tens of ms); part
# of every alert's delay (bench/alerts.py: at 0.15 s the largest share of poll -> webhook, goal 0.5 s at p99)
GATHER_MS = 60


class AlertEngine:
    def __init__(self, store: Store, rules: Sequence[Rule] | None = None,
                 clock: Callable[[], float] = time.time, notify: Callable[[], None] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.notify = notify or (lambda: None)  # wakes the dispatcher after a commit with outbox rows
        self._base_rules = list(rules) if rules is not None else load_rules()
        self._lock = threading.Lock()
        self._evaluation = Outage(log, "alert evaluation")  # a database outage: two log lines, not one a second
        self._timer = Outage(log, "alert timer")
        self._trackers: dict[tuple[str, str], Tracker] = {}
        self._open: dict[tuple[str, str], int] = {}  # (rule, subject) -> alert id of a firing alert
        self._watched = WatchedPoints(store, clock)  # per enterprise, the points the live rules watch
        self._parks: dict[str, tuple[str, str]] = {}  # park -> (name_zh, region)
        self._gw_seen: dict[tuple[str, str, str], int] = {}
        self._last_hour_judged = 0
        self._queue: queue.Queue[tuple[list[IncomingBatch], int]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rules_stamp: tuple[object, object] | None = None
        self.reload()

    # ---- configuration --------------------------------------------------------------------------
    def reload(self) -> None:
        """Rules = the defaults (or those given) overridden by id with each park's own (alert_rules)."""
        park_rules = alert_rules.bodies(self.store)
        opened = rows.open_alerts(self.store)
        parks = self.store.parks()
        extra = parse_rules({"rules": [json.loads(b) for b in park_rules]}, "alert_rules") if park_rules else []
        # a park's rule replaces the default of the same id for that park only
        overridden: dict[str, list[str]] = {}
        for r in extra:
            overridden.setdefault(r.id, []).append(r.park or "")
        base = [r.model_copy(update={"except_parks": tuple(overridden[r.id])}) if r.id in overridden else r
                for r in self._base_rules]
        with self._lock:
            self.rules = base + extra
            self._watched.clear()
            self._parks = {p.key: (p.name_zh, p.region or "") for p in parks}
            for a in opened:
                rule = self.rule_for(a["rule_id"], a["park"])
                if rule is None:
                    continue
                k = (a["rule_id"], a["subject"])
                tr = self._trackers.setdefault(k, Tracker(rule, a["subject"]))
                tr.state, tr.since_ms, tr.peak = "firing", int(a["since_ms"]), a["peak"]
                self._open[k] = int(a["id"])

    def _reload_if_changed(self) -> None:
        """Rules set through the API of another process: picked up at the next tick."""
        key = alert_rules.stamp(self.store)
        if key != self._rules_stamp:
            if self._rules_stamp is not None:
                self.reload()
            self._rules_stamp = key

    def rule_for(self, rule_id: str, park: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id and r.park in (None, park)
                     and park not in r.except_parks), None)

    # ---- the live path: ingest hands over each commit ---------------------------------------------
    def on_commit(self, batches: Sequence[IncomingBatch], committed_ms: int) -> None:
        """Called by ingest's writer threads after a commit: queued, never blocking them."""
        self._queue.put((list(batches), committed_ms))

    def start(self, gather_ms: int = GATHER_MS) -> None:
        """The thread that applies the rules to committed batches. Ingest commits from several writer
        threads, so one gateway's consecutive batches can arrive out of order; the thread gathers what
        comes in ``gather_ms`` and feeds each point's samples in time order (a sample older than what a
        rule has seen is late data, which does not move a live alarm)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._live, args=(gather_ms / 1000,), name="alerts", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _live(self, gather_s: float) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            # from the first commit, not from this pick-up: what queued during a long pass waits no window more
            deadline, items = first[1] / 1000 + gather_s, [first]
            with contextlib.suppress(queue.Empty):
                while (left := min(gather_s, deadline - time.time())) > 0:
                    items.append(self._queue.get(timeout=left))
                for _ in range(self._queue.qsize()):
                    items.append(self._queue.get_nowait())
            # a bad rule or an unreachable database must not end the thread
            batches, committed = [b for bs, _c in items for b in bs], max(c for _b, c in items)
            self._evaluation.attempt(functools.partial(self.process, batches, committed))

    def process(self, batches: Sequence[IncomingBatch], committed_ms: int) -> None:
        """Apply the rules to committed batches, each point's samples in time order."""
        out: Judged = []
        with self._lock:
            per_point: dict[tuple[str, str, str], tuple[PointCtx, list[tuple[int, float | None, int]]]] = {}
            for b in batches:
                gk = (b.park, b.enterprise, b.gateway)
                self._gw_seen[gk] = max(self._gw_seen.get(gk, 0), committed_ms)
                watched = self._watched.of(b.park, b.enterprise, {s[0] for s in b.batch.samples}, self.rules,
                                           self._parks)
                if not watched:
                    continue
                for key, ts, value, q in b.batch.samples:
                    ctx = watched.get(key)
                    if ctx is not None:
                        per_point.setdefault((b.park, b.enterprise, key), (ctx, []))[1].append((ts, value, q))
            for ctx, samples in per_point.values():
                samples.sort(key=lambda s: s[0])
                for rule in ctx.rules:
                    tr = self._trackers.get((rule.id, ctx.subject.key))
                    if tr is None:
                        tr = self._trackers[(rule.id, ctx.subject.key)] = Tracker(rule, ctx.subject.key)
                    for ts, value, q in samples:
                        tx = tr.observe(ts, value, q)
                        if tx is not None:
                            out.append((rule, ctx.subject, tx, None))
            self._persist(out)

    # ---- on a timer ---------------------------------------------------------------------------------
    def tick(self, now_ms: int | None = None) -> int:
        """Silence, escalation, hourly pollutant averages and indicators; returns transitions made."""
        now = int(self.clock() * 1000) if now_ms is None else now_ms
        self._reload_if_changed()
        out: Judged = []
        with self._lock:
            out += self._stale(now)
            self._persist(out)
            self._escalate(now)
        hour = now // HOUR_MS * HOUR_MS
        if hour > self._last_hour_judged:
            judged = self._hourly(hour)
            with self._lock:
                self._persist(judged)
            self._last_hour_judged = hour
            out += judged
        return len(out)

    def _stale(self, now: int) -> Judged:
        out: Judged = []
        stale_rules = [r for r in self.rules if r.kind == "stale" and r.enabled]
        if not stale_rules:
            return out
        for park in self._parks:
            for g in self.store.gateways(park):
                key = (park, g.enterprise, g.gateway)
                seen = max(self._gw_seen.get(key, 0), g.health_ms or 0, g.status_ms or 0) or None
                name_zh, region = self._parks[park]
                subj = Subject(f"{park}/{g.enterprise}/{g.gateway}", park, g.enterprise, g.gateway, None, "",
                               "网关", name_zh, region)
                for rule in stale_rules:
                    if not rule.applies(park, g.enterprise, g.gateway, "", None):
                        continue
                    tr = self._trackers.setdefault((rule.id, subj.key), Tracker(rule, subj.key))
                    tx = tr.silent(now, seen)
                    if tx is not None:
                        out.append((rule, subj, tx, None))
        return out

    def _escalate(self, now: int) -> None:
        notify = False
        with rows.writing(self.store, ANNOUNCER) as w:
            for a in w.open_alerts():
                rule = self.rule_for(a["rule_id"], a["park"])
                if rule is None or rule.escalate_after_s is None or a["acked_ms"] is not None:
                    continue
                # escalation counts on the wall clock from when the platform raised the alert
                due = int(a["created_ms"]) + int(rule.escalate_after_s * 1000) * (int(a["escalations"]) + 1)
                if now >= due and a["severity"] != "critical":
                    w.escalate(int(a["id"]), now, one_level_up(a["severity"]))
                    notify = True
        if notify:
            self.notify()

    def _hourly(self, hour_end: int) -> Judged:
        """The hour just ended: pollutant averages (HJ 212), the year's indicators, the meter balances."""
        from analytics.alerts.balance import judge_balances  # balance rules: their own module
        return self._pollutants(hour_end) + self._indicators(hour_end) + judge_balances(self, hour_end)

    def _indicators(self, now: int) -> Judged:
        rules = [r for r in self.rules if r.kind == "indicator" and r.enabled]
        out = self._hazwaste(now, [r for r in rules if r.indicator == "hazwaste_storage"])
        rules = [r for r in rules if r.indicator != "hazwaste_storage"]
        end = datetime.fromtimestamp(now / 1000, tz=CHINA)
        start = end.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        if not rules or end - start < timedelta(days=7):
            return out  # a year's first week says too little about the year
        for park in self._parks:
            ctx = Context()  # the park checked and the counters read once for all of its rules
            for rule in (r for r in rules if r.applies(park, "", "", "", None)):
                try:
                    out += self._indicator(rule, park, start, end, now, ctx)
                except (LookupError, ValueError) as exc:  # one indicator's bad data must not lose the hour
                    log.warning("alert rule %s on park %s not judged: %s", rule.id, park, exc)
        return out

    def _indicator(self, rule: Rule, park: str, start: datetime, end: datetime, now: int, ctx: Context) -> Judged:
        """An indicator of the registry below its target over the year so far, or (``key_energy_user``) each
        enterprise of the park over the rule's line in tce a year."""
        name_zh, region = self._parks[park]
        if rule.indicator == "key_energy_user":
            ind = load("key_energy_users")
            line = {"threshold_tce": rule.threshold} if rule.threshold else {}  # none: the indicator's 5 000
            users = ind.feed(self.store, park, ind.params.model_validate({"start": start, "end": end, **line}), ctx)
            out: Judged = []
            for k in users.inputs["enterprises"]:
                subj = Subject(f"{park}/{k['enterprise']}/key_energy_user", park, k["enterprise"], None, None,
                               "tce", "年化综合能耗", name_zh, region)
                out += self._judge(rule, subj, now, k["key_user"], k["annualised_tce"], users.inputs["threshold_tce"])
            return out
        ind = load(str(rule.indicator))
        p = ind.period_params(start, end, None)  # None: no figure for the year so far (refused in the rule)
        r = ind.feed(self.store, park, p, ctx) if p is not None else None
        if r is None or r.value is None or r.target is None:
            return []
        # the subject's key is the share's before the registry, so its open alerts carry over; a ratio reads bare
        subj = Subject(f"{park}/{ind.key}", park, None, None, None, "" if ind.unit.startswith("ratio") else ind.unit,
                       ind.name_zh, name_zh, region)
        return self._judge(rule, subj, now, r.status == "below_target", r.value, r.target)

    def _judge(self, rule: Rule, subj: Subject, at_ms: int, over: bool, value: float | None,
               threshold: float | None) -> Judged:
        """A rule judged on a computed figure (:meth:`Tracker.judged`): the transition it makes, if any."""
        tr = self._trackers.setdefault((rule.id, subj.key), Tracker(rule, subj.key))
        tx = tr.judged(at_ms, over, value)
        return [] if tx is None else [(rule, subj, tx, threshold)]

    def _hazwaste(self, now: int, rules: list[Rule]) -> Judged:
        """Hazardous waste per enterprise and waste code: the oldest tonne's age against the rule's days,
        and the enterprise's tonnage against its permit (records from ingest.store.records.hazwaste)."""
        from ingest.store.records import hazwaste

        out: Judged = []
        if not rules:
            return out
        for park, (name_zh, region) in self._parks.items():
            for st in hazwaste.storage(self.store, park, now):
                ent = st["enterprise"]
                for rule in (r for r in rules if r.applies(park, ent, "", "", None)):
                    days = float(rule.threshold or 330.0)
                    for c in st["codes"]:
                        subj = Subject(f"{park}/{ent}/hazwaste/{c['waste_code']}", park, ent, c["waste_code"],
                                       None, "天", f"危险废物 {c['waste_code']} 贮存天数", name_zh, region)
                        out += self._judge(rule, subj, now, c["oldest_age_days"] >= days, c["oldest_age_days"], days)
                    if st["limit_t"] is not None:
                        subj = Subject(f"{park}/{ent}/hazwaste/tonnes", park, ent, None, None, "t",
                                       "危险废物贮存量", name_zh, region)
                        out += self._judge(rule, subj, now, st["stored_t"] > st["limit_t"], st["stored_t"],
                                           float(st["limit_t"]))
        return out

    def _pollutants(self, hour_end: int) -> Judged:
        from analytics.indicators.pollutant_compliance import compute_compliance, limits

        out: Judged = []
        rules = [r for r in self.rules if r.kind == "pollutant" and r.enabled]
        if not rules:
            return out
        lim = limits()
        for park, (name_zh, region) in self._parks.items():
            try:
                comp = compute_compliance(self.store, park, hour_end - HOUR_MS, hour_end, lim)
            except LookupError:
                continue
            for o in comp["outlets"]:
                if o["valid_hours"] == 0:
                    continue  # no valid hour: the data says nothing (a quality or stale rule watches that)
                value = o["max_hourly"]
                subj = Subject(f"{park}/{o['enterprise']}/{o['device']}/{o['metric']}", park, o["enterprise"],
                               o["device"], o["metric"], o["unit"].split(" ")[0],
                               METRICS[o["metric"]].zh if o["metric"] in METRICS else o["metric"],
                               name_zh, region)
                for rule in rules:
                    if not rule.applies(park, o["enterprise"], o["device"], "", o["metric"]):
                        continue
                    limit = float(rule.threshold if rule.threshold is not None else o["limit"])
                    # a concentration meets its limit at or under it (the one rule: status_for)
                    out += self._judge(rule, subj, hour_end, status_for(value, limit, "lower") == "below_target",
                                       value, limit)
        return out

    # ---- persistence ----------------------------------------------------------------------------
    def _persist(self, out: Judged) -> None:
        if not out:
            return
        with rows.writing(self.store, ANNOUNCER) as w:  # one transaction for the pass's transitions
            for rule, subj, tx, threshold in out:
                k = (rule.id, subj.key)
                if tx.to == "firing":
                    if k in self._open:
                        continue  # already firing (dedup across restarts)
                    self._open[k] = w.fire(new_alert(rule, subj, tx.at_ms, tx.since_ms, tx.value, tx.peak,
                                                     threshold))
                else:
                    aid = self._open.pop(k, None)
                    if aid is not None:
                        w.resolve(aid, tx.at_ms, tx.value, tx.peak)
        self.notify()

    def forget(self, alert_id: int) -> None:
        """An alert closed by a person: the tracker starts over (it fires again if the cause persists)."""
        with self._lock:
            for k, aid in list(self._open.items()):
                if aid == alert_id:
                    del self._open[k]
                    tr = self._trackers.get(k)
                    if tr is not None:
                        tr.state, tr.peak = "ok", None

    def run(self, stop: threading.Event, every_s: float = 5.0) -> None:
        while not stop.wait(every_s):
            self._timer.attempt(self.tick)  # the timer must survive a bad hour; the outage is logged once


def as_listener(engine: AlertEngine) -> Callable[[list[IncomingBatch], int], None]:
    """Ingest's commit listener; start the engine (:meth:`AlertEngine.start`) to have the batches applied."""
    def listener(batches: list[IncomingBatch], committed_ms: int) -> None:
        engine.on_commit(batches, committed_ms)
    return listener
