"""What the green-power register (ingest.store.records.green_register) adds to the new-energy share of a
period: the counting rules of docs/indicators/green-power.md, GP-1..GP-5.

- GP-1 a contract counts what the trading centre settled (``settled_kwh``), never what was contracted;
- GP-2 证电合一: certificates bundled with a contract are its proof, not more energy: the contract counts
  max(settled, 1 MWh × bundled certificates), once;
- GP-3 a certificate bought or cancelled (核销) counts 1 MWh once, however many entries name its id;
- GP-4 a certificate sold (the park's own generation) takes 1 MWh of on-site RE out of the numerator;
- GP-5 each entry is spread evenly by time over the period it covers (the contract's delivery period, the
  certificate's production period; a bundled batch over its contract's), and a share's period takes the
  part that falls within it.

The cap — nothing counts beyond the grid import of the same period (NES-6) — is the share's own
(:func:`analytics.indicators.new_energy_share.compute_share`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from ingest.store.base import Store
from ingest.store.records.green_register import KWH_PER_CERTIFICATE, CertificateEntry, ContractEntry, entries

METHOD = ("GP-1 contracts count settled kWh; GP-2 bundled certificates (证电合一) counted once with their contract; "
          "GP-3 a certificate bought or cancelled counts 1 MWh once; GP-4 certificates sold deduct; "
          "GP-5 spread evenly by time over the period each covers")


@dataclass(frozen=True)
class Piece:
    """Energy an entry spreads evenly over [start, end): green (counts) or sold (deducts), in kWh."""

    start_ms: int
    end_ms: int
    green_kwh: float
    sold_kwh: float
    kind: str  # contract | certificates


@dataclass(frozen=True)
class Claims:
    """The register's part of a period, kWh, before the share's cap."""

    green_kwh: float = 0.0
    contracts_kwh: float = 0.0
    certificates_kwh: float = 0.0
    sold_kwh: float = 0.0
    entries: int = 0

    def inputs(self) -> dict[str, Any]:
        return {"green_kwh": round(self.green_kwh, 3), "contracts_kwh": round(self.contracts_kwh, 3),
                "certificates_kwh": round(self.certificates_kwh, 3), "sold_kwh": round(self.sold_kwh, 3),
                "entries": self.entries, "method": METHOD}


def _new_ids(counted: dict[str, list[tuple[int, int]]], c: CertificateEntry) -> int:
    """How many of the batch's ids are not counted yet; marks them counted."""
    spans = counted.setdefault(c.prefix, [])
    seen = sum(max(0, min(hi, c.last) - max(lo, c.first) + 1) for lo, hi in spans)
    spans.append((c.first, c.last))
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    counted[c.prefix] = merged
    return (c.last - c.first + 1) - seen


def pieces(contracts: Sequence[ContractEntry], certificates: Sequence[CertificateEntry]) -> list[Piece]:
    """The register as energy spread over time, each certificate counted once (GP-1..GP-4)."""
    counted: dict[str, list[tuple[int, int]]] = {}
    bundled: dict[int, int] = {}
    claimed = [c for c in certificates if c.action in ("bought", "cancelled")]
    for c in claimed:  # bundled batches first: an id bundled with a contract is the contract's (GP-2)
        if c.contract_id is not None:
            bundled[c.contract_id] = bundled.get(c.contract_id, 0) + _new_ids(counted, c)
    out = [Piece(k.start_ms, k.end_ms, max(k.settled_kwh or 0.0, KWH_PER_CERTIFICATE * bundled.get(k.id, 0)), 0.0,
                 "contract") for k in contracts]
    for c in claimed:
        if c.contract_id is None:
            out.append(Piece(c.start_ms, c.end_ms, KWH_PER_CERTIFICATE * _new_ids(counted, c), 0.0, "certificates"))
    out += [Piece(c.start_ms, c.end_ms, 0.0, KWH_PER_CERTIFICATE * (c.last - c.first + 1), "certificates")
            for c in certificates if c.action == "sold"]
    return [p for p in out if p.end_ms > p.start_ms and (p.green_kwh > 0 or p.sold_kwh > 0)]


def within(ps: Sequence[Piece], start_ms: int, end_ms: int) -> Claims:
    """The part of each piece that falls in [start, end) (GP-5), summed."""
    green = contracts = certs = sold = 0.0
    n = 0
    for p in ps:
        part = max(0, min(end_ms, p.end_ms) - max(start_ms, p.start_ms)) / (p.end_ms - p.start_ms)
        if part <= 0:
            continue
        n += 1
        green += p.green_kwh * part
        sold += p.sold_kwh * part
        if p.kind == "contract":
            contracts += p.green_kwh * part
        else:
            certs += p.green_kwh * part
    return Claims(green, contracts, certs, sold, n)


def register_pieces(store: object, park: str, enterprise: str | None = None) -> list[Piece]:
    """The park's register (every holder's; with ``enterprise``, that enterprise's alone) as pieces."""
    return pieces(*entries(cast(Store, store), park, enterprise))


def claims(store: object, park: str, start_ms: int, end_ms: int, enterprise: str | None = None) -> Claims:
    """The register's green power and certificates sold over [start, end) (``store``: the platform's Store)."""
    return within(register_pieces(store, park, enterprise), start_ms, end_ms)
