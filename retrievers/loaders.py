"""Document loaders: bytes on disk to `Document`s with text, title, sections and pages.

Only well-kept offline libraries (pypdf, beautifulsoup4 + lxml, docx2txt). Every failure is a
`LoadError` with a reason a user can act on; a bad file never stops a batch.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from verirag.core.records import Document, LoadFailure, Section
from verirag.retrievers.formats import html_to_text, markdown_sections, rst_sections

__all__ = [
    "SUPPORTED_SUFFIXES",
    "LoadError",
    "content_hash",
    "file_doc_id",
    "html_to_text",
    "iter_files",
    "load_file",
    "markdown_sections",
    "rst_sections",
]

# Caps on what one file may expand to, so that one hostile file cannot exhaust memory.
ZIP_EXPANSION = 20  # a DOCX may inflate to this many times max_file_bytes
MAX_PDF_PAGES = 5_000
MAX_TEXT_CHARS = 20_000_000  # characters taken from one PDF

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx", ".jsonl"}


class LoadError(ValueError):
    """A file that cannot become a document; `str()` is the reason shown to the user."""


def file_doc_id(path: Path) -> str:
    """Stable across runs and content changes: a document is its source path."""
    return hashlib.sha1(f"file:{path.resolve()}".encode()).hexdigest()[:16]


def content_hash(text: str, title: str, metadata: dict[str, Any]) -> str:
    payload = json.dumps([text, title, metadata], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _decode(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise LoadError(f"invalid UTF-16 text at byte {exc.start}") from exc
    if b"\x00" in raw[:8192]:
        raise LoadError("binary content (NUL bytes), not a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not valid UTF-8 at byte {exc.start}; re-save the file as UTF-8") from exc


def _pdf(path: Path) -> tuple[str, str, tuple[int, ...], dict[str, Any]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise LoadError("encrypted PDF (needs a password)")
        pages: list[str] = []
        taken = 0
        for page in reader.pages[:MAX_PDF_PAGES]:
            pages.append((page.extract_text() or "")[: MAX_TEXT_CHARS - taken])
            taken += len(pages[-1])
            if taken >= MAX_TEXT_CHARS:
                break
        truncated = len(pages) < len(reader.pages) or taken >= MAX_TEXT_CHARS
        info = reader.metadata
        title = str(info.title) if info is not None and info.title else ""
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AssertionError) as exc:
        raise LoadError(f"unreadable PDF: {exc}") from exc
    starts: list[int] = []
    parts: list[str] = []
    pos = 0
    for page_text in pages:
        starts.append(pos)
        clean = page_text.strip()
        parts.append(clean)
        pos += len(clean) + 2
    text = "\n\n".join(parts)
    extra: dict[str, Any] = {"pages": len(pages)}
    if truncated:
        extra["truncated"] = True
    return title, text, tuple(starts), extra


def _docx(path: Path, max_bytes: int) -> str:
    import docx2txt

    _check_unzipped_size(path, max_bytes * ZIP_EXPANSION)
    try:
        text: str = docx2txt.process(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise LoadError(f"unreadable DOCX (not a valid Word document): {exc}") from exc
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _check_unzipped_size(path: Path, limit: int) -> None:
    """Refuse a zip container whose members would expand past `limit` bytes (a zip bomb).
    The declared sizes bound what zipfile will inflate: it stops a member at its size."""
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise LoadError(f"unreadable DOCX (not a valid Word document): {exc}") from exc
    if total > limit:
        raise LoadError(
            f"DOCX would expand to {total} bytes, over the limit of {limit} "
            f"({ZIP_EXPANSION} x max_file_bytes): refused as a possible zip bomb"
        )


def _first_heading(sections: tuple[Section, ...]) -> str:
    for section in sections:
        if section.headings:
            return section.headings[0]
    return ""


def load_file(path: Path, max_bytes: int) -> tuple[list[Document], list[LoadFailure]]:
    """Load one file. JSONL gives many documents, and its bad lines come back as failures."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(
            f"unsupported file type '{suffix or path.name}'; supported: "
            + " ".join(sorted(SUPPORTED_SUFFIXES))
        )
    try:
        stat = path.stat()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}") from exc
    if stat.st_size > max_bytes:
        raise LoadError(
            f"file is {stat.st_size} bytes, over the limit of {max_bytes} (max_file_bytes)"
        )
    if stat.st_size == 0:
        raise LoadError("empty file")
    if suffix == ".jsonl":
        return _jsonl(path, stat.st_mtime)

    try:
        return _load_one(path, suffix, stat.st_mtime, max_bytes)
    except LoadError:
        raise
    except Exception as exc:
        # Parsers raise whatever their input provokes (ElementTree.ParseError in a DOCX,
        # IndexError in pypdf, RecursionError on deeply nested HTML): one bad file fails that
        # file, never the run. MemoryError included: a bomb that got past the caps.
        raise LoadError(
            f"unreadable {suffix.lstrip('.').upper()} file ({type(exc).__name__}: {exc})"[:500]
        ) from exc


def _load_one(
    path: Path, suffix: str, mtime: float, max_bytes: int
) -> tuple[list[Document], list[LoadFailure]]:
    source = str(path.resolve())
    title = ""
    sections: tuple[Section, ...] = ()
    page_starts: tuple[int, ...] = ()
    metadata: dict[str, Any] = {"format": suffix.lstrip(".")}
    if suffix == ".pdf":
        title, text, page_starts, extra = _pdf(path)
        metadata.update(extra)
    elif suffix == ".docx":
        text = _docx(path, max_bytes)
    else:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise LoadError(f"cannot read: {exc.strerror}") from exc
        if suffix in HTML_SUFFIXES:
            title, text = html_to_text(raw)
        else:
            text = _decode(raw)
    if not text.strip():
        raise LoadError("empty document (no extractable text)")
    if suffix in HTML_SUFFIXES or suffix in (".md", ".markdown"):
        sections = markdown_sections(text)
    elif suffix == ".rst":
        sections = rst_sections(text)
    title = title or _first_heading(sections) or path.stem
    doc = Document(
        doc_id=file_doc_id(path),
        source=source,
        title=title,
        text=text,
        content_hash=content_hash(text, title, metadata),
        mtime=mtime,
        metadata=metadata,
        sections=sections,
        page_starts=page_starts,
    )
    return [doc], []


def _jsonl(path: Path, mtime: float) -> tuple[list[Document], list[LoadFailure]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror}") from exc
    content = _decode(raw)
    resolved = str(path.resolve())
    docs: list[Document] = []
    failures: list[LoadFailure] = []
    seen: set[str] = set()
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{resolved}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            failures.append(LoadFailure(where, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        try:
            docs.append(_jsonl_record(record, resolved, lineno, mtime))
        except LoadError as exc:
            failures.append(LoadFailure(where, str(exc)))
            continue
        if docs[-1].doc_id in seen:
            failures.append(LoadFailure(where, f"duplicate id '{docs[-1].doc_id}'"))
            docs.pop()
        else:
            seen.add(docs[-1].doc_id)
    if not docs and not failures:
        raise LoadError("empty JSONL file (no records)")
    return docs, failures


def _jsonl_record(record: object, source: str, lineno: int, mtime: float) -> Document:
    if not isinstance(record, dict):
        raise LoadError("expected a JSON object with a 'text' field")
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoadError("missing or empty 'text' (a non-empty string is required)")
    title = record.get("title", "")
    if not isinstance(title, str):
        raise LoadError("'title' must be a string")
    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise LoadError("'metadata' must be an object")
    metadata = {**metadata, "format": "jsonl", "line": lineno}
    digest = content_hash(text, title, {k: v for k, v in metadata.items() if k != "line"})
    raw_id = record.get("id")
    if raw_id is None:
        # Without an id a record is its content: edits show up as a new document plus a prune.
        doc_id = hashlib.sha1(f"jsonl:{source}:{digest}".encode()).hexdigest()[:16]
    elif isinstance(raw_id, str | int) and str(raw_id).strip():
        doc_id = str(raw_id)
    else:
        raise LoadError("'id' must be a non-empty string or integer")
    return Document(
        doc_id=doc_id,
        source=f"{source}#{lineno}",
        title=title,
        text=text,
        content_hash=digest,
        mtime=mtime,
        metadata=metadata,
        sections=(Section(0, len(text), ()),),
    )


def iter_files(
    paths: list[Path], include: list[str] | None = None, exclude: list[str] | None = None
) -> Iterator[Path]:
    """Files under `paths` (recursively, sorted, hidden entries skipped) that pass the globs.

    Globs match the path relative to the directory given (`docs/**/*.md`) or the file name
    (`*.md`). Explicit files are yielded even if unsupported, so they are reported as failed.
    """
    seen: set[Path] = set()
    for root in paths:
        if not root.exists():
            raise FileNotFoundError(f"no such file or directory: {root}")
        if root.is_file():
            candidates: list[tuple[Path, str]] = [(root, root.name)]
        else:
            candidates = [
                (p, p.relative_to(root).as_posix())
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
                and p.suffix.lower() in SUPPORTED_SUFFIXES
            ]
        for path, rel in candidates:
            if include and not any(_glob(rel, g) for g in include):
                continue
            if exclude and any(_glob(rel, g) for g in exclude):
                continue
            resolved = path.resolve()
            if resolved not in seen:
                seen.add(resolved)
                yield path


def _glob(rel: str, pattern: str) -> bool:
    from fnmatch import fnmatch

    name = rel.rsplit("/", 1)[-1]
    if fnmatch(rel, pattern) or fnmatch(name, pattern):
        return True
    # `**/` also matches zero directories, as users expect from shells.
    return pattern.startswith("**/") and fnmatch(rel, pattern[3:])
