"""Fuzzing the loaders: mutated and generated files of every supported type. Every file
either loads or fails with a `LoadError` and a reason; nothing else escapes (an escaping
exception would abort an indexing run). Bounded for CI by `max_examples`."""

from __future__ import annotations

import json
import random
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.loader_fuzzing import LIMIT, MUTATIONS, load_or_reason, mutate, seeds
from verirag.retrievers.loaders import SUPPORTED_SUFFIXES, LoadError, load_file

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SEEDS = seeds(Path(tempfile.mkdtemp(prefix="verirag-fuzz-")))


def _load(content: bytes, suffix: str) -> None:
    load_or_reason(content, suffix)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    suffix = draw(st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
    kind = draw(st.sampled_from(MUTATIONS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    return mutate(SEEDS[suffix], kind, rng), suffix


@FUZZ
@given(mutated())
def test_mutated_files_load_or_fail_with_a_reason(case: tuple[bytes, str]) -> None:
    _load(*case)


@FUZZ
@given(st.binary(max_size=4000), st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
def test_random_bytes_load_or_fail_with_a_reason(content: bytes, suffix: str) -> None:
    _load(content, suffix)


@pytest.mark.parametrize(
    ("content", "suffix"),
    [
        (b"<div>" * 50_000 + b"deep" + b"</div>" * 50_000, ".html"),  # deeply nested
        (b"x" * 1_500_000, ".txt"),  # one huge line
        ("caf\u00e9 ".encode() + "caf\u00e9 ".encode("latin-1") + b"\xff\xfe", ".md"),  # mixed
        (b"\0" * 10_000, ".txt"),
        (json.dumps({"text": "a" * 100, "id": ["not", "a", "string"]}).encode(), ".jsonl"),
        (b'{"text": "ok"}\n' + b"\xff\xfe{broken\n" * 100, ".jsonl"),
    ],
)
@pytest.mark.timeout(30)  # 50,000 nested divs once took minutes (quadratic tree edits)
def test_hostile_shapes_load_or_fail_with_a_reason(content: bytes, suffix: str) -> None:
    _load(content, suffix)


def test_a_zip_bomb_in_every_zip_based_type_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"<w:t>" + b"a" * (LIMIT * 30) + b"</w:t>")
    with pytest.raises(LoadError, match="zip bomb"):
        load_file(bomb, LIMIT)
