"""Say where in a YAML document a validation error sits, in the words of the document."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def describe_location(doc: Any, loc: Sequence[int | str], lists: dict[str, tuple[str, str]]) -> str:
    """Turn a pydantic error location into e.g. ``device 'grid1', point 'import', field scale``.

    ``lists`` maps a list field to how its items are named: ``{"devices": ("device", "id")}``.
    """
    parts: list[str] = []
    node: Any = doc
    for i, key in enumerate(loc):
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
        prev = loc[i - 1] if i else None
        if isinstance(prev, str) and prev in lists and isinstance(node, dict):
            label, id_field = lists[prev]
            parts.append(f"{label} {node.get(id_field, key)!r}")
        elif not isinstance(key, int) and key not in lists:
            parts.append(f"field {key}")
    return ", ".join(parts) or "top level"
