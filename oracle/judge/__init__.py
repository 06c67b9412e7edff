"""Judging one example: tolerances and rounding, finite-difference probes, blame and diagnosis, one module per check."""
