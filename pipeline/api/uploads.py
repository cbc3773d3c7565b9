"""Uploaded files: safe names, bounded sizes, atomic saves under the data directory."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path, PurePosixPath

from fastapi import UploadFile

from verirag.pipeline.api.errors import ProblemError
from verirag.retrievers.loaders import SUPPORTED_SUFFIXES

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100
_CHUNK = 1024 * 1024


def sanitize_filename(raw: str) -> str:
    """A name that can only ever land inside the upload directory.

    Rejected (422): control characters, any `..`, an empty name, an unsupported extension.
    Directories are stripped (both separators), everything outside [A-Za-z0-9._-] becomes
    `_`, and leading dots go (hidden files are skipped by the indexer). The extension is kept.
    """
    if not raw:
        raise ProblemError(422, "an uploaded file has no name", kind="invalid-filename")
    if any(unicodedata.category(ch) == "Cc" for ch in raw):
        raise ProblemError(
            422, "an uploaded file name contains control characters", kind="invalid-filename"
        )
    if ".." in raw:
        raise ProblemError(
            422,
            "an uploaded file name contains '..'; send plain file names",
            kind="invalid-filename",
        )
    base = unicodedata.normalize("NFKC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    name = PurePosixPath(base)
    stem, suffix = name.stem, name.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ProblemError(
            422,
            "an uploaded file has an unsupported type; supported: "
            + " ".join(sorted(SUPPORTED_SUFFIXES)),
            kind="unsupported-file-type",
        )
    clean = _UNSAFE.sub("_", stem).strip("._-")[:_MAX_STEM] or "upload"
    return clean + suffix


async def save_upload(upload: UploadFile, target: Path, max_bytes: int, which: str = "") -> int:
    """Copy the upload to `target` atomically (tmp + rename), refusing more than `max_bytes`.
    `which` names the file in an error ("2 of 3"): errors never echo request data."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    size = 0
    try:
        with tmp.open("wb") as out:
            while chunk := await upload.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ProblemError(
                        413,
                        " ".join(["uploaded file", *([which] if which else []), "is over"])
                        + f" the limit of {max_bytes} bytes per file",
                        kind="file-too-large",
                    )
                out.write(chunk)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return size
