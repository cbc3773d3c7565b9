"""One router per resource: ask, collections/documents, jobs, review, health/metrics."""
