"""Sparkplug B in (issue 24): a bridge from third-party edge nodes' ``spBv1.0/...`` topics to parkmon's wire.

codec.py (the Sparkplug B protobuf schema, built at run time) · mapping.py (Sparkplug names -> parkmon points
and metrics) · session.py (per edge node: births, aliases, bdSeq/seq, rebirth requests; no I/O) · bridge.py (the
MQTT client and ``parkmon ingest sparkplug``). docs/sparkplug.md; docs/decisions/0013-sparkplug-bridge.md.
"""
