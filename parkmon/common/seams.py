"""The extension seams' registries map a key to ``"module:Name"``; this resolves one, importing the
module only when it is first needed (a gateway never imports a server-side driver's libraries)."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
