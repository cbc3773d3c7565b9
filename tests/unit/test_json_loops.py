"""A looping greedy JSON reply is stopped where a window of it has come round LOOP_SEEN
times, and a reply that only repeats the JSON layout between distinct items is never taken
for a loop."""

from __future__ import annotations

import random

from verirag.generators.json_grammar import LOOP_SEEN, LOOP_SPAN, LoopWatch, looping


def _packed(tokens: list[int]) -> bytes:
    return b"".join(t.to_bytes(4, "little", signed=True) for t in tokens)


def _first_stop(tokens: list[int]) -> int | None:
    """How many tokens the decoder keeps before it stops on a loop (None: never)."""
    watch = LoopWatch()
    return next((n for n, token in enumerate(tokens, 1) if watch.add(token)), None)


def test_a_short_cycle_stops_once_a_window_has_come_round_loop_seen_times() -> None:
    head = list(range(1000, 1040))
    cycle = [7, 8, 9, 10, 11, 12, 13, 14, 15]  # "the two sides are not the same as"
    tokens = head + cycle * 60
    # The window is the last LOOP_SPAN tokens; it stands again one, two ... cycles back.
    assert _first_stop(tokens) == len(head) + LOOP_SPAN + (LOOP_SEEN - 1) * len(cycle)


def test_two_items_alternating_are_a_loop() -> None:
    item = list(range(200, 240))  # the same statement and reason every time
    tokens = [1, 2, 3]
    for verdict in [0, 1] * 20:
        tokens += [*item, 90 + verdict]
    stop = _first_stop(tokens)
    assert stop is not None and stop < len(tokens) // 2


def test_distinct_items_in_the_same_layout_are_not_a_loop() -> None:
    rng = random.Random(0)
    layout = list(range(50, 72))  # `"},\n {\n "statement": "` and the like: 22 tokens
    tokens: list[int] = []
    for _ in range(40):
        content = [rng.randrange(1000, 30000) for _ in range(12)]
        shared = [300, 301, 302, 303, 304, 305]  # "The context does not mention"
        tokens += layout + shared + content + layout[:5] + [0]
    assert _first_stop(tokens) is None


def test_a_match_across_token_boundaries_is_no_match() -> None:
    a = int.from_bytes(b"\x01\x01\x11\x22", "little")
    c = int.from_bytes(b"\x00\x00\x05\x05", "little")
    b = int.from_bytes(b"\x11\x22\x00\x00", "little")
    # b's bytes also stand two bytes into a + c, which is not a token of the reply.
    assert not looping(_packed([a, c, b]), span=1, seen=2)
    assert looping(_packed([b, c, b]), span=1, seen=2)


def test_a_reply_shorter_than_the_window_is_not_a_loop() -> None:
    assert not looping(b"")
    assert not looping(_packed([5] * (LOOP_SPAN + LOOP_SEEN - 2)))
    assert looping(_packed([5] * (LOOP_SPAN + LOOP_SEEN - 1)))


def test_an_item_repeated_and_closed_is_not_a_loop() -> None:
    """The 0.5B judge repeats one classified statement three or four times and then closes
    the list: a reply that parses, which the stop must leave alone."""
    item = list(range(400, 450))
    tokens = [1, 2, *(item * (LOOP_SEEN - 2)), 3, 4]
    assert _first_stop(tokens) is None
