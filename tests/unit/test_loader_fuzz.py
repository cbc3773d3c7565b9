"""Fuzzing the loaders: mutated and generated files of every supported type. Every file
either loads or fails with a `LoadError` and a reason; nothing else escapes (an escaping
exception would abort an indexing run). Bounded for CI by `max_examples`."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import make_docx, make_pdf
from verirag.retrievers.loaders import SUPPORTED_SUFFIXES, LoadError, load_file

LIMIT = 2_000_000
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _seeds(folder: Path) -> dict[str, bytes]:
    """A valid file of every supported type, to mutate."""
    pdf = make_pdf(folder / "s.pdf", ["First page text.", "Second page."], title="T").read_bytes()
    docx = make_docx(folder / "s.docx", ["Para one.", "Para two."]).read_bytes()
    text = b"# Title\n\nSome text about owls.\n\n## Part\nMore.\n"
    out = {".pdf": pdf, ".docx": docx, ".jsonl": b'{"id": "a", "text": "Owls."}\n'}
    for suffix in SUPPORTED_SUFFIXES - set(out):
        out[suffix] = (
            b"<html><head><title>T</title></head><body><h1>H</h1><p>Owls.</p></body></html>"
            if suffix in (".html", ".htm")
            else text
        )
    return out


SEEDS = _seeds(Path(tempfile.mkdtemp(prefix="verirag-fuzz-")))


def _load(content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(content)
        try:
            docs, failures = load_file(path, LIMIT)
        except LoadError as exc:
            assert str(exc)  # a reason, always
            return
        for failure in failures:
            assert failure.reason
        for doc in docs:
            assert isinstance(doc.text, str)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, str]:
    suffix = draw(st.sampled_from(sorted(SUPPORTED_SUFFIXES)))
    data = bytearray(SEEDS[suffix])
    kind = draw(st.sampled_from(["truncate", "flip", "nul", "splice", "repeat"]))
    if kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "flip":
        for _ in range(draw(st.integers(1, 20))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "nul":
        i = draw(st.integers(0, len(data)))
        data[i:i] = b"\0" * draw(st.integers(1, 64))
    elif kind == "splice":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=200))
    else:
        i = draw(st.integers(0, len(data)))
        data[i:i] = data[i : i + 50] * draw(st.integers(2, 200))
    return bytes(data), suffix


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
