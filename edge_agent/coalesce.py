"""Read coalescing: merge a unit's points into as few requests as the protocol allows.

A 100-register read costs about as much as a 2-register read (DESIGN.md), so points of one table
are grouped into blocks of at most ``max_block`` registers, bridging gaps of up to ``max_gap``
unused registers. Bits (coils, discrete inputs) come 2000 to a request.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.config import PointConfig

MAX_BITS = 2000


@dataclass(frozen=True, slots=True)
class Block:
    table: str
    start: int
    count: int
    points: tuple[PointConfig, ...]


def plan_reads(points: list[PointConfig], max_block: int = 125, max_gap: int = 8) -> list[Block]:
    blocks: list[Block] = []
    for table in ("holding", "input", "coil", "discrete"):
        mine = sorted((p for p in points if p.table == table), key=lambda p: p.span)
        limit = MAX_BITS if table in ("coil", "discrete") else max_block
        current: list[PointConfig] = []
        start = end = 0
        for p in mine:
            p_start, p_end = p.span
            if current and p_start - end <= max_gap and max(end, p_end) - start <= limit:
                current.append(p)
                end = max(end, p_end)
                continue
            if current:
                blocks.append(Block(table, start, end - start, tuple(current)))
            current, start, end = [p], p_start, p_end
        if current:
            blocks.append(Block(table, start, end - start, tuple(current)))
    return blocks


def split(block: Block) -> list[Block]:
    """After an exception reply: halve the block so only the bad registers end up lost."""
    if len(block.points) <= 1:
        return []
    half = len(block.points) // 2
    out = []
    for part in (block.points[:half], block.points[half:]):
        start = min(p.span[0] for p in part)
        end = max(p.span[1] for p in part)
        out.append(Block(block.table, start, end - start, part))
    return out
