"""OPC UA driver (asyncua): a subscription when the server offers one, polling when it does not.

In subscription mode every data change the server reports becomes a sample with the server's
source timestamp and status; ``read()`` hands over what arrived since the last cycle. A dead or
restarted server shows as bad samples (communication failure) each cycle until the driver has
reconnected and subscribed again; a value is never repeated as if it were fresh.

asyncua is imported when the driver first connects (it takes longer to import than the rest of the
gateway together): checking a config needs only the settings below.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from edge_agent.config import DeviceConfig, PointConfig
from edge_agent.drivers.base import Sample
from parkmon.common import quality
from parkmon.common.clock import now_ms
from parkmon.common.quality import QualityClass, Reason

if TYPE_CHECKING:
    from asyncua.client.client import Client

log = logging.getLogger(__name__)


class OpcUaConfig(DeviceConfig):
    """An OPC UA server (endpoint): subscriptions, with polling as the fallback."""

    label: ClassVar[str] = "an OPC UA server: subscription, polling as the fallback (OPC UA 服务器)"

    driver: Literal["opcua"] = "opcua"
    endpoint: str | None = None  # opc.tcp://host:4840/path
    opcua_mode: Literal["subscription", "poll"] = "subscription"

    def check_driver(self) -> None:
        if not self.endpoint:
            raise ValueError("driver opcua needs endpoint: opc.tcp://host:4840/...")
        missing = [p.name for p in self.points if not p.node_id]
        if missing:
            raise ValueError(f"OPC UA points need node_id (e.g. ns=2;s=Meter.Power): {', '.join(missing)}")

    @property
    def link(self) -> str:
        return str(self.endpoint)

    def describe(self, every_s: float) -> list[str]:
        lines = [f"device {self.id} {self.name!r} opcua {self.endpoint} ({self.opcua_mode}): {len(self.points)} "
                 f"nodes, every {every_s} s"]
        lines += [f"  {self.id}.{p.name:<14} {p.metric:<26} {p.node_id} x{p.scale:g}{p.offset:+g} "
                  f"[{p.resolved_unit}] {p.label}" for p in self.points]
        return lines


@cache
def _reasons() -> dict[int, Reason]:
    """OPC UA status codes (Part 4/6) onto parkmon reasons; the class comes from the code's top bits."""
    from asyncua.ua.status_codes import StatusCodes

    return {
        StatusCodes.BadCommunicationError: Reason.COMM_FAILURE,
        StatusCodes.BadNotConnected: Reason.COMM_FAILURE,
        StatusCodes.BadNoCommunication: Reason.COMM_FAILURE,
        StatusCodes.BadWaitingForInitialData: Reason.COMM_FAILURE,
        StatusCodes.BadSensorFailure: Reason.SENSOR_FAILURE,
        StatusCodes.BadDeviceFailure: Reason.DEVICE_FAILURE,
        StatusCodes.BadOutOfService: Reason.STOPPED,
        StatusCodes.BadConfigurationError: Reason.CONFIG_ERROR,
        # a node_id the server does not have (a typo, a renamed tag): in poll mode the read answers with these,
        # as a subscription's refused item does (that one is set to CONFIG_ERROR where it is refused)
        StatusCodes.BadNodeIdUnknown: Reason.CONFIG_ERROR,
        StatusCodes.BadNodeIdInvalid: Reason.CONFIG_ERROR,
        StatusCodes.BadAttributeIdInvalid: Reason.CONFIG_ERROR,
        StatusCodes.BadNotReadable: Reason.CONFIG_ERROR,
        StatusCodes.BadUserAccessDenied: Reason.CONFIG_ERROR,
        StatusCodes.UncertainLastUsableValue: Reason.LAST_USABLE,
        StatusCodes.UncertainSensorNotAccurate: Reason.OUT_OF_RANGE,
        StatusCodes.UncertainEngineeringUnitsExceeded: Reason.OUT_OF_RANGE,
        StatusCodes.UncertainSubNormal: Reason.NONE,
    }


def status_to_quality(code: int) -> int:
    severity = (code >> 30) & 0x3  # 00 good, 01 uncertain, 10/11 bad
    if severity == 0:
        return quality.GOOD
    cls = QualityClass.UNCERTAIN if severity == 1 else QualityClass.BAD
    full = _reasons().get(code & 0xFFFF0000, Reason.NONE)
    return quality.make(cls, full)


def _ms(dt: datetime | None) -> int:
    if dt is None:
        return now_ms()
    if dt.tzinfo is None:  # asyncua hands out naive datetimes in UTC
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


class _Handler:
    def __init__(self, driver: OpcUaDriver) -> None:
        self.driver = driver

    def datachange_notification(self, node: Any, value: Any, data: Any) -> None:
        self.driver._on_change(node, data.monitored_item.Value)


class OpcUaDriver:
    config: ClassVar[type[OpcUaConfig]] = OpcUaConfig

    def __init__(self, device: OpcUaConfig, shared: dict[object, Any] | None = None) -> None:
        self.device = device
        assert device.endpoint is not None
        self.endpoint = device.endpoint
        # keyed by the node id as asyncua writes it back (ns=0;i=2267 -> i=2267, GUIDs in lower case), so a
        # notification finds its point whatever valid spelling the config used (tests/test_interop_opcua.py)
        self._by_node: dict[str, PointConfig] = {}
        self._refused: list[PointConfig] = []  # monitored items the server refused (e.g. BadNodeIdUnknown)
        self._queue: list[Sample] = []
        self._client: Client | None = None
        self._nodes: list[Any] = []
        self._subscribed = False
        self.requests = 0
        self.reconnects = 0

    async def open(self) -> None:
        pass  # connecting happens in read(), so a server that is down at start-up is not fatal

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        client, self._client, self._subscribed = self._client, None, False
        if client is not None:
            with contextlib.suppress(Exception):  # the server may be gone already; nothing to tell it
                await asyncio.wait_for(client.disconnect(), self.device.timeout_s)

    async def _connect(self) -> Client:
        from asyncua.client.client import Client

        client = Client(self.endpoint, timeout=self.device.timeout_s)
        await asyncio.wait_for(client.connect(), self.device.timeout_s * 2)
        self._client = client
        self._nodes = [client.get_node(p.node_id or "") for p in self.device.points]
        self._by_node = {n.nodeid.to_string(): p for n, p in zip(self._nodes, self.device.points, strict=True)}
        self.reconnects += 1
        if self.device.opcua_mode == "subscription":
            try:
                period_ms = (self.device.poll_interval_s or 1.0) * 1000 / 2
                sub = await client.create_subscription(period_ms, _Handler(self))
                handles = await sub.subscribe_data_change(self._nodes)
                # with several nodes asyncua returns a refused item's status in place of its handle instead of
                # raising: such a point gets a bad sample each cycle, never silence
                results = handles if isinstance(handles, list) else [handles]
                self._refused = [p for p, h in zip(self.device.points, results, strict=True) if not isinstance(h, int)]
                for p, h in zip(self.device.points, results, strict=True):
                    if not isinstance(h, int):
                        log.warning("%s: point %s (node %s) refused by the server: %s", self.device.id, p.name,
                                    p.node_id, h)
                self._subscribed = True
            except Exception as exc:  # a server without subscriptions: poll it instead
                log.warning("%s: subscription refused (%s); polling instead", self.device.id, exc)
                self._subscribed = False
        return client

    def _sample(self, p: PointConfig, dv: Any) -> Sample:
        code = int(dv.StatusCode.value) if dv.StatusCode is not None else 0
        q = status_to_quality(code)
        raw = dv.Value.Value if dv.Value is not None else None
        ts = _ms(dv.SourceTimestamp or dv.ServerTimestamp)
        value: float | None
        try:
            value = None if raw is None else float(raw)
        except (TypeError, ValueError):
            return (f"{self.device.id}.{p.name}", ts, None, quality.bad(Reason.CONFIG_ERROR))
        if value is not None:
            value = value * p.scale + p.offset
        if quality.quality_class(q) == QualityClass.BAD:
            value = None
        return (f"{self.device.id}.{p.name}", ts, value, q)

    def _on_change(self, node: Any, dv: Any) -> None:
        p = self._by_node.get(node.nodeid.to_string())
        if p is not None:
            self._queue.append(self._sample(p, dv))

    def _all_bad(self, why: Reason) -> list[Sample]:
        ts = now_ms()
        return [(f"{self.device.id}.{p.name}", ts, None, quality.bad(why)) for p in self.device.points]

    async def read(self) -> list[Sample]:
        try:
            client = self._client or await self._connect()
            if self._subscribed:
                # a cheap request proves the session is alive; the data came by subscription
                self.requests += 1
                await asyncio.wait_for(client.nodes.server_state.read_value(), self.device.timeout_s)
                out, self._queue = self._queue, []
                ts = now_ms()
                return out + [(f"{self.device.id}.{p.name}", ts, None, quality.bad(Reason.CONFIG_ERROR))
                              for p in self._refused]
            from asyncua.ua.attribute_ids import AttributeIds

            self.requests += 1
            values = await asyncio.wait_for(client.read_attributes(self._nodes, AttributeIds.Value),
                                            self.device.timeout_s)
            return [self._sample(p, dv) for p, dv in zip(self.device.points, values, strict=True)]
        except Exception as exc:  # timeouts, refused connections, a restarted server's dead session
            log.debug("%s: %s", self.device.id, exc)
            await self._drop()
            self._queue.clear()
            return self._all_bad(Reason.COMM_FAILURE)
