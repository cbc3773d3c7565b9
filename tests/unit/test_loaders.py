from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tests.helpers import make_docx, make_pdf
from verirag.retrievers.loaders import (
    LoadError,
    file_doc_id,
    html_to_text,
    iter_files,
    load_file,
    markdown_sections,
    rst_sections,
)

MAX = 1_000_000


def test_text_file_has_stable_id_hash_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("The Eiffel Tower is in Paris.\n")
    [doc], failures = load_file(path, MAX)
    assert failures == []
    assert doc.doc_id == file_doc_id(path) == load_file(path, MAX)[0][0].doc_id
    assert doc.title == "notes"
    assert doc.source == str(path.resolve())
    assert doc.mtime == path.stat().st_mtime
    path.write_text("The Eiffel Tower is in Lyon.\n")
    [changed], _ = load_file(path, MAX)
    assert changed.doc_id == doc.doc_id
    assert changed.content_hash != doc.content_hash


def test_markdown_sections_follow_heading_path_and_skip_code_fences() -> None:
    text = "intro\n# A\nalpha\n## B\nbeta\n```\n# not a heading\n```\n# C\ngamma\n"
    sections = markdown_sections(text)
    assert [s.headings for s in sections] == [(), ("A",), ("A", "B"), ("C",)]
    assert sections[0].start == 0
    assert all(a.end == b.start for a, b in itertools.pairwise(sections))
    assert sections[-1].end == len(text)
    assert "# not a heading" in text[sections[2].start : sections[2].end]


def test_rst_sections_levels_by_first_use() -> None:
    text = "Title\n=====\n\nintro\n\nPart\n----\n\nbody\n\nOther\n=====\nend\n"
    assert [s.headings for s in rst_sections(text)] == [("Title",), ("Title", "Part"), ("Other",)]


def test_html_headings_become_sections_and_scripts_are_dropped(tmp_path: Path) -> None:
    raw = (
        b"<html><head><title>Guide</title><script>var x=1;</script></head><body>"
        b"<h1>Install</h1><p>Run pip.</p><h2>Offline</h2><p>Use wheels.</p></body></html>"
    )
    title, text = html_to_text(raw)
    assert title == "Guide"
    assert "var x" not in text
    path = tmp_path / "g.html"
    path.write_bytes(raw)
    [doc], _ = load_file(path, MAX)
    assert [s.headings for s in doc.sections] == [("Install",), ("Install", "Offline")]


def test_pdf_pages_are_recorded(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "r.pdf", ["First page about cats.", "Second page about dogs."], title="Pets"
    )
    [doc], _ = load_file(path, MAX)
    assert doc.title == "Pets"
    assert doc.metadata["pages"] == 2
    dogs = doc.text.index("dogs")
    assert doc.page_span(dogs, dogs + 4) == (2, 2)
    assert doc.page_span(0, len(doc.text)) == (1, 2)


def test_docx_text(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "m.docx", ["Minutes of the meeting.", "Budget approved."])
    [doc], _ = load_file(path, MAX)
    assert "Budget approved." in doc.text


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf", "unreadable PDF"),
        ("random.pdf", bytes(range(256)) * 10, "unreadable PDF"),
        ("bin.txt", b"abc\x00\x01\x02def", "binary content"),
        ("latin.txt", "café".encode("latin-1"), "not valid UTF-8"),
        ("empty.md", b"", "empty file"),
        ("blank.md", b"   \n\n  ", "empty document"),
        ("bad.docx", b"PK\x03\x04garbage", "unreadable DOCX"),
        ("image.png", b"\x89PNG", "unsupported file type"),
        ("empty.html", b"<html><body><script>x</script></body></html>", "empty document"),
    ],
)
def test_bad_files_raise_load_error_with_reason(
    tmp_path: Path, name: str, payload: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(LoadError, match=reason):
        load_file(path, MAX)


def test_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_text("x" * 100)
    with pytest.raises(LoadError, match="over the limit of 50"):
        load_file(path, 50)


def test_jsonl_records_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": "a", "text": "Alpha text", "title": "A", "metadata": {"k": 1}}),
        "{not json",
        json.dumps({"text": "No id here"}),
        json.dumps({"id": "c", "title": "no text"}),
        json.dumps({"id": "a", "text": "duplicate"}),
        "",
        json.dumps(["a list"]),
    ]
    path.write_text("\n".join(lines) + "\n")
    docs, failures = load_file(path, MAX)
    assert [d.title for d in docs] == ["A", ""]
    assert docs[0].doc_id == "a"
    assert docs[0].metadata["k"] == 1
    assert docs[0].source.endswith("docs.jsonl#1")
    reasons = {f.source.rsplit(":", 1)[1]: f.reason for f in failures}
    assert set(reasons) == {"2", "4", "5", "7"}
    assert "invalid JSON" in reasons["2"]
    assert "'text'" in reasons["4"]
    assert "duplicate id" in reasons["5"]
    # A record without an id is identified by its content: stable across runs.
    again, _ = load_file(path, MAX)
    assert again[1].doc_id == docs[1].doc_id


def test_iter_files_recursive_globs_and_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    for rel in ("x.md", "a/y.txt", "a/b/z.md", ".git/h.md", "a/skip.bin", "a/b/draft.md"):
        (tmp_path / rel).write_text("t")
    found = {p.relative_to(tmp_path).as_posix() for p in iter_files([tmp_path])}
    assert found == {"x.md", "a/y.txt", "a/b/z.md", "a/b/draft.md"}
    only_md = {p.name for p in iter_files([tmp_path], include=["*.md"], exclude=["draft*"])}
    assert only_md == {"x.md", "z.md"}
    nested = {p.name for p in iter_files([tmp_path], include=["a/**/*.md"])}
    assert nested == {"z.md", "draft.md"}
    with pytest.raises(FileNotFoundError, match="no such file"):
        list(iter_files([tmp_path / "missing"]))


def test_a_docx_with_malformed_xml_fails_that_file_only(tmp_path: Path) -> None:
    import zipfile

    good = make_docx(tmp_path / "good.docx", ["Fine text."])
    bad = tmp_path / "bad.docx"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "word/document.xml":
                data = data[: len(data) // 2]  # cut mid-element: ElementTree.ParseError
            dst.writestr(info, data)
    with pytest.raises(LoadError, match="unreadable DOCX"):
        load_file(bad, 10_000_000)
    assert load_file(good, 10_000_000)[0][0].text == "Fine text."


def test_a_zip_bomb_docx_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    import zipfile

    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * 30_000_000)  # 30 MB of zeros, ~30 KB packed
    assert bomb.stat().st_size < 100_000
    with pytest.raises(LoadError, match="zip bomb"):
        load_file(bomb, 1_000_000)


def test_any_parser_exception_is_a_per_file_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pypdf

    path = make_pdf(tmp_path / "r.pdf", ["Page one."], title="T")

    class Exploding:
        def __init__(self, *_: object) -> None:
            raise IndexError("list index out of range")

    monkeypatch.setattr(pypdf, "PdfReader", Exploding)
    with pytest.raises(LoadError, match=r"unreadable PDF file \(IndexError"):
        load_file(path, 10_000_000)


def test_deeply_nested_html_fails_or_loads_but_never_raises_anything_else(tmp_path: Path) -> None:
    page = tmp_path / "deep.html"
    page.write_text("<div>" * 20_000 + "deep text" + "</div>" * 20_000)
    try:
        docs, _ = load_file(page, 10_000_000)
    except LoadError as exc:
        assert "unreadable HTML" in str(exc)
    else:
        assert "deep text" in docs[0].text


def test_pdf_pages_and_characters_are_capped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import verirag.retrievers.loaders as loaders

    path = make_pdf(tmp_path / "r.pdf", ["One.", "Two.", "Three."], title="T")
    monkeypatch.setattr(loaders, "MAX_PDF_PAGES", 2)
    (doc,), _ = load_file(path, 10_000_000)
    assert "Three" not in doc.text and doc.metadata["truncated"] is True
    assert doc.metadata["pages"] == 2
