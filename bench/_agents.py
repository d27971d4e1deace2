"""Run many gateway agents in one process (bench helper): every config in a folder, stats to a file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig, load_config


async def main(configs: list[AgentConfig], stats: Path) -> None:
    agents = [Agent(c) for c in configs]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # each agent hands disk writes and its goodbye to a thread; one process hosts them all here
    loop.set_default_executor(ThreadPoolExecutor(max_workers=len(agents) + 4))
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    runs = [asyncio.create_task(a.run()) for a in agents]

    backlog = [0]

    def write(stopped: bool = False) -> None:
        if not stopped:  # a stopped agent has closed its buffer: the last figure stands
            backlog[0] = sum(a.buffer.depth()[1] for a in agents)
        data = {
            "polled_points": sum(a.health[d.id].polls * len(d.points) for a in agents for d in a.cfg.devices
                                 if d.id in a.health),
            "late_cycles": sum(h.late_cycles for a in agents for h in a.health.values()),
            "backlog_samples": backlog[0],
        }
        tmp = stats.with_suffix(".tmp")  # whole or not at all: the bench reads it meanwhile
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, stats)

    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)
        if not stop.is_set():
            await asyncio.to_thread(write)
    for a in agents:
        a.stop()
    await asyncio.gather(*runs, return_exceptions=True)
    # every poll counted, after the last one: the bench counts what was polled against the rows stored
    write(stopped=True)


if __name__ == "__main__":
    # argv: folder stats-file shard shards. paho waits with select(), which cannot watch file
    # descriptors above 1023, so one process hosts at most ~100 gateways (a real one hosts one)
    shard, shards = int(sys.argv[3]), int(sys.argv[4])
    paths = sorted(Path(sys.argv[1]).glob("gateway-*.yaml"))[shard::shards]
    asyncio.run(main([load_config(p) for p in paths], Path(sys.argv[2])))
