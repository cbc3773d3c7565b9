"""What a collection directory is, apart from its contents: a checked name, the settings both
the SQLite store and the FAISS index are built from, the one-writer lock, and durable renames.

Kept free of SQLite and FAISS so both `store` and `vector_index` can share it without importing
each other.
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CollectionError(ValueError):
    """Bad collection name, unknown collection, or incompatible settings."""


class CollectionBusyError(RuntimeError):
    """Another process is writing this collection."""


def validate_name(name: str) -> str:
    if not _NAME.match(name):
        raise CollectionError(
            f"invalid collection name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def collection_exists(root: Path, name: str) -> bool:
    """A collection of that name has its database under `root` (one being dropped does not)."""
    return (root / name / "meta.sqlite").is_file()


def list_collections(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    # A name starting with "." is a collection being dropped (see `drop_collection`).
    return sorted(
        p.name
        for p in root.iterdir()
        if not p.name.startswith(".") and collection_exists(root, p.name)
    )


@dataclass(frozen=True)
class CollectionConfig:
    embedder: str
    dim: int
    index_type: str
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    ivf_nlist: int = 0
    ivf_nprobe: int = 16
    pq_m: int = 0
    # Where the vectors are searched: "faiss" (files beside SQLite, the default) or "milvus"
    # (a Milvus server or cluster at `backend_uri`; `retrievers/milvus_vectors.py`).
    backend: str = "faiss"
    backend_uri: str = ""
    # The learned sparse (SPLADE) model whose term weights the collection keeps beside BM25's
    # (`retrievers/learned_sparse.py`); "" = none (collections made before it existed).
    splade_model: str = ""


class WriterLock:
    """The flock on `<collection>/lock`; the kernel drops it if the writer dies, so a crashed
    indexer never leaves the collection locked."""

    def __init__(self, directory: Path) -> None:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise CollectionBusyError(
                f"collection '{directory.name}' is being written by another process; "
                "wait for it to finish"
            ) from exc
        # The holder's pid, for whoever investigates a busy collection.
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` survive a power loss, not only a process crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
