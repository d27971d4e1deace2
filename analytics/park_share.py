"""Moved: the new-energy share and its feed are :mod:`analytics.indicators.new_energy_share`; the meters it
reads, :mod:`analytics.meters`. These names stay importable for the callers outside analytics not yet moved
(analytics/alerts/engine.py, parkmon/api/board.py, bench/indicators.py, tests/test_board.py,
tests/test_e2e_park.py, tests/test_dashboards.py); this module goes when they import from there."""

from analytics.indicators.new_energy_share import compute_park_share as compute_park_share
from analytics.meters import FLOW_METRICS as FLOW_METRICS
from analytics.meters import pooled_flows as pooled_flows
from parkmon.common.clock import CHINA as CHINA
