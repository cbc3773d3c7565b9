"""The fixed questions over the demo corpus (Python's help topics) shared by the latency
and API load benchmarks, and the percentile both report."""

from __future__ import annotations

QUESTIONS = [
    "What does the pass statement do?",
    "What does the with statement do?",
    "How does a for loop work over a sequence?",
    "What is the difference between a list and a tuple?",
    "What does the global statement do?",
    "How are default parameter values evaluated?",
    "What does the del statement do?",
    "What happens when an exception is raised in a try clause?",
    "What does the assert statement do?",
    "How do I write a lambda expression?",
]


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
