"""Bench helper: the near-wire floor. Each device read in one pymodbus request per cycle, values
decoded with struct, all values of a cycle published as one QoS 1 MQTT message. No buffer."""

from __future__ import annotations

import asyncio
import json
import signal
import struct
import sys
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.client import AsyncModbusTcpClient

from parkmon.common.clock import now_ms


async def main(mqtt_port: int, ports: list[int], units: int, topic: str) -> None:
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bare-loop")
    pub.connect("127.0.0.1", mqtt_port)
    pub.loop_start()
    clients = [AsyncModbusTcpClient("127.0.0.1", port=p, retries=0) for p in ports]
    for c in clients:
        await c.connect()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    fmt = ">" + "f" * 25
    next_at = time.time() // 1 + 1
    while not stop.is_set():
        await asyncio.sleep(max(0.0, next_at - time.time()))
        next_at += 1
        ts = now_ms()

        async def read(c: AsyncModbusTcpClient, u: int) -> tuple[float, ...]:
            rr = await c.read_holding_registers(0, count=50, device_id=u)
            return struct.unpack(fmt, b"".join(w.to_bytes(2, "big") for w in rr.registers))

        results = await asyncio.gather(*(read(c, u) for c in clients for u in range(1, units + 1)))
        payload = json.dumps({"ts": ts, "values": [v for r in results for v in r]}).encode()
        pub.publish(topic, payload, qos=1)
    pub.loop_stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))
