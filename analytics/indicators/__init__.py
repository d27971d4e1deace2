"""Indicators: one module each behind the seam in :mod:`base`."""
