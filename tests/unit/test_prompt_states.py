"""PromptStates: which saved prompt a new prompt starts from, and what is kept (no model)."""

from __future__ import annotations

import numpy as np

from verirag.generators.prompt_states import PromptStates


def _t(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.intc)


def test_best_is_the_longest_shared_prefix_and_becomes_most_recent() -> None:
    states = PromptStates(max_bytes=1000)
    states.add(_t(1, 2, 3, 4), b"a" * 10)
    states.add(_t(1, 2, 9, 9, 9), b"b" * 10)
    states.add(_t(7, 7), b"c" * 10)
    entry, shared = states.best(_t(1, 2, 3, 5, 6))
    assert entry is not None and shared == 3 and entry.data == b"a" * 10
    # The prompt is shorter than the saved one: the shared prefix is at most its length.
    entry, shared = states.best(_t(1, 2))
    assert shared == 2
    assert states.best(_t(5))[0] is None


def test_a_prompt_that_extends_a_saved_one_replaces_it() -> None:
    states = PromptStates(max_bytes=1000)
    states.add(_t(1, 2, 3), b"x" * 10)
    states.add(_t(1, 2, 3, 4, 5), b"y" * 10)
    assert states.size == 10  # the shorter one is dominated
    states.add(_t(1, 2), b"z" * 10)  # a prefix of a saved prompt is kept beside it
    assert states.size == 20


def test_least_recently_used_states_go_first_when_over_budget() -> None:
    states = PromptStates(max_bytes=25)
    states.add(_t(1), b"a" * 10)
    states.add(_t(2), b"b" * 10)
    states.best(_t(1, 5))  # 1 is now the most recent
    states.add(_t(3), b"c" * 10)
    assert states.size == 20
    assert states.best(_t(2))[0] is None  # evicted
    assert states.best(_t(1))[0] is not None and states.best(_t(3))[0] is not None
