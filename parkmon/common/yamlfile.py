"""Read a YAML file that must hold a mapping, with errors that say which file and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def read_mapping(path: str | Path, error: type[Exception], missing_hint: str, expected: str) -> dict[str, Any]:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{p}: {missing_hint}") from None
    except yaml.YAMLError as exc:
        raise error(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise error(f"{p}: expected a mapping with {expected}")
    return doc
