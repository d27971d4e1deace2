"""parkmon HTTP API (FastAPI): registry, latest readings, indicators."""
