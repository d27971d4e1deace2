"""Moved: comprehensive energy, its carbon and their feed are :mod:`analytics.indicators.comprehensive_energy`.
These names stay importable for the callers outside analytics not yet moved (analytics/alerts/engine.py,
bench/indicators.py, tests/test_e2e_park.py, tests/test_import.py); this module goes when they import from
there."""

from analytics.indicators.comprehensive_energy import CARRIERS as CARRIERS
from analytics.indicators.comprehensive_energy import compute_energy as compute_energy
from analytics.indicators.comprehensive_energy import energy_by_enterprise as energy_by_enterprise
