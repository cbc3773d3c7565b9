"""Benchmarks: scripts run as `python bench/NAME.py`."""
