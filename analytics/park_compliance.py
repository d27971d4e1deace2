"""Moved: pollutant compliance and its feed are :mod:`analytics.indicators.pollutant_compliance`. These names
stay importable for the callers outside analytics not yet moved (analytics/alerts/engine.py,
bench/indicators.py); this module goes when they import from there."""

from analytics.indicators.pollutant_compliance import compute_compliance as compute_compliance
from analytics.indicators.pollutant_compliance import limits as limits
