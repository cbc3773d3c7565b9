"""Runtime checks and offline evaluation: datasets, metrics, reports."""
