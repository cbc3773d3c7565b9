"""A collection's vectors in Milvus: the store backend for vectors that outgrow one machine's
memory, or that many API replicas search at once.

Milvus holds what the FAISS file holds, nothing more: the chunk id and its vector. SQLite stays
the source of truth (documents, chunks, text and the float32 vectors), so the crash story is
FAISS's: a batch commits to SQLite first, then reaches Milvus, and the generation Milvus
mirrors is written to SQLite last. A writer that died in between leaves Milvus behind; the next
writer compares ids and replays the difference from SQLite (no re-embedding), and a reader
meanwhile drops any id its SQLite snapshot does not hold (`FaissStore.hits`).

One client for every deployment: `uri` is a Milvus Lite server's (`milvus-lite server
--port 19530`, what the tests start on 127.0.0.1), a Milvus standalone or distributed cluster's
(`http://milvus:19530`) or Zilliz Cloud's; a token for the latter two comes from
`VERIRAG_MILVUS_TOKEN`, never from a file.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from verirag.retrievers.collection_dir import CollectionConfig, CollectionError

# Rows per insert or delete request: Milvus caps a gRPC message at 64 MB (about 40,000 vectors
# of 384 floats); smaller requests keep each retry cheap.
BATCH = 2_000
# Ids per `chunk_id in [...]` expression of a filtered search.
FILTER_IDS = 100_000
TIMEOUT_S = 30.0
CONNECT_TRIES = 3
# pymilvus pings an idle connection every 10 s, which a Milvus cluster allows but Milvus Lite's
# Python gRPC server (gRPC's default policy: one ping per 5 min without calls) answers with a
# `too_many_pings` GOAWAY after about 5 idle minutes. On loopback, where Milvus Lite is what
# runs and no network can silently drop the connection, idle pings are turned off.
LOOPBACK_GRPC = {"grpc.keepalive_permit_without_calls": False}
TOKEN_ENV = "VERIRAG_MILVUS_TOKEN"
URI_ENV = "VERIRAG_MILVUS_URI"


class VectorDatabaseError(CollectionError):
    """The vector database is unreachable or refused a request; the message names it."""


@contextmanager
def milvus_lite_server(
    data_dir: Path, log: Path | None = None, wait_s: float = 60.0
) -> Iterator[str]:
    """Run a Milvus Lite server (`milvus-lite server`, from the `milvus` extra) on a free
    127.0.0.1 port for as long as the block lasts, and yield its URI: what the tests and
    `bench/vector_backends.py` talk to, through the same client a Milvus cluster takes."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    exe = shutil.which("milvus-lite", path=str(Path(sys.executable).parent)) or "milvus-lite"
    command = [exe, "server", "--data-dir", str(data_dir), "--host", "127.0.0.1"]
    sink = log.open("wb") if log is not None else subprocess.DEVNULL
    try:
        server = subprocess.Popen(
            [*command, "--port", str(port)], stdout=sink, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + wait_s
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    said = log.read_text(errors="replace")[-2000:] if log is not None else ""
                    raise VectorDatabaseError(f"milvus-lite server did not start: {said}")
                time.sleep(0.2)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    finally:
        if log is not None and not isinstance(sink, int):
            sink.close()


def grpc_options(uri: str) -> dict[str, object]:
    """Channel options for `uri`: pymilvus's own, except no idle pings on loopback."""
    host = (urlsplit(uri if "://" in uri else f"//{uri}").hostname or "").lower()
    return dict(LOOPBACK_GRPC) if host in {"127.0.0.1", "localhost", "::1"} else {}


def milvus_collection_name(collection: str) -> str:
    """A fresh Milvus collection name for a verirag collection: unique per creation, so a
    collection dropped and made again, or two data directories on one cluster, never share
    one (Milvus names take letters, digits and '_')."""
    return f"verirag_{re.sub(r'[^A-Za-z0-9_]', '_', collection)[:40]}_{secrets.token_hex(4)}"


def _index_params(config: CollectionConfig, n: int) -> tuple[str, dict[str, int], dict[str, int]]:
    """Milvus's index type, build and search parameters for the collection's index settings
    (the same knobs as FAISS's, so a collection moves between backends unchanged)."""
    if config.index_type == "hnsw":
        build = {"M": config.hnsw_m, "efConstruction": max(40, 2 * config.hnsw_m)}
        return "HNSW", build, {"ef": config.hnsw_ef_search}
    if config.index_type == "ivfpq":
        nlist = config.ivf_nlist or max(1, int(4 * np.sqrt(max(n, 1))))
        m = config.pq_m or max(1, config.dim // 8)
        return "IVF_PQ", {"nlist": nlist, "m": m, "nbits": 8}, {"nprobe": config.ivf_nprobe}
    return "FLAT", {}, {}


class MilvusVectors:
    """One verirag collection's vectors in one Milvus collection. The constructor is cheap;
    the client connects on first use."""

    def __init__(self, uri: str, name: str, config: CollectionConfig) -> None:
        self.uri = os.environ.get(URI_ENV) or uri
        self.name = name
        self.config = config
        self._client: Any = None
        self._ready = False

    # -- connection ----------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            try:
                from pymilvus import MilvusClient
            except ImportError as exc:
                raise VectorDatabaseError(
                    "the milvus backend needs pymilvus: pip install 'verirag[milvus]'"
                ) from exc
            # A busy server can miss one handshake (seen with Milvus Lite under load): three
            # tries; a server that is down refuses each at once, so this stays quick.
            for attempt in range(CONNECT_TRIES):
                try:
                    self._client = MilvusClient(
                        uri=self.uri,
                        token=os.environ.get(TOKEN_ENV, ""),
                        timeout=TIMEOUT_S,
                        grpc_options=grpc_options(self.uri),
                    )
                    break
                except Exception as exc:  # pymilvus raises its own and grpc's errors
                    if attempt == CONNECT_TRIES - 1:
                        raise VectorDatabaseError(
                            f"cannot reach the vector database at {self.uri}: {exc}"
                        ) from exc
                    time.sleep(0.5 * (attempt + 1))
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, timeout=TIMEOUT_S, **kwargs)
        except VectorDatabaseError:
            raise
        except Exception as exc:
            raise VectorDatabaseError(
                f"the vector database at {self.uri} failed to {what} "
                f"(collection {self.name}): {exc}"
            ) from exc

    def exists(self) -> bool:
        return bool(self._call("list collections", self.client.has_collection, self.name))

    def _loaded(self) -> bool:
        """Load the collection for search if it exists; False when it does not (a reader
        never creates it: that is a writer's step)."""
        if self._ready:
            return True
        if not self.exists():
            return False
        try:
            self.client.load_collection(self.name, timeout=TIMEOUT_S)
        except Exception:
            # The server answered (it listed the collection) but cannot load it yet: a
            # writer is creating it and its index. Nothing to search until it has.
            return False
        self._ready = True
        return True

    def ensure(self, n_hint: int = 0) -> None:
        """Create the Milvus collection and its index if missing (a writer's step), and load
        it for search. `n_hint` sizes IVF's lists."""
        if self._ready:
            return
        from pymilvus import DataType, MilvusClient

        # Collection, index and load as three idempotent steps, each checked first, so that a
        # writer that died between them (or a reader loading meanwhile, which Milvus Lite
        # answered with "no index" during a one-call create) finishes the job next time.
        if not self.exists():
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("chunk_id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.config.dim)
            self._call(
                "create a collection",
                self.client.create_collection,
                self.name,
                schema=schema,
                # Strong: a search sees every write acknowledged before it, as FAISS does.
                consistency_level="Strong",
            )
        if not self._call("list indexes", self.client.list_indexes, self.name):
            kind, build, _ = _index_params(self.config, n_hint)
            index = self.client.prepare_index_params()
            index.add_index(field_name="vector", index_type=kind, metric_type="IP", params=build)
            self._call("create the index", self.client.create_index, self.name, index)
        self._call("load the collection", self.client.load_collection, self.name)
        self._ready = True

    def drop(self) -> None:
        if self.exists():
            self._call("drop the collection", self.client.drop_collection, self.name)
        self._ready = False

    # -- writes --------------------------------------------------------------------------
    def upsert(self, ids: Sequence[int], vectors: npt.NDArray[np.float32]) -> None:
        """Upsert, not insert: replaying a batch after a crash must not duplicate a row."""
        self.ensure(len(ids))
        for start in range(0, len(ids), BATCH):
            rows = [
                {"chunk_id": int(cid), "vector": vec.tolist()}
                for cid, vec in zip(
                    ids[start : start + BATCH], vectors[start : start + BATCH], strict=True
                )
            ]
            self._call("write vectors", self.client.upsert, self.name, data=rows)

    def delete(self, ids: Iterable[int]) -> None:
        ids = [int(i) for i in ids]
        if not ids:
            return
        self.ensure()
        for start in range(0, len(ids), BATCH):
            self._call(
                "delete vectors", self.client.delete, self.name, ids=ids[start : start + BATCH]
            )

    def flush(self) -> None:
        """Seal what was written into indexed segments: Milvus searches unsealed rows by brute
        force (2 s a query at 20,000 rows in Milvus Lite; 70 ms once flushed)."""
        self.ensure()
        self._call("flush", self.client.flush, self.name)

    # -- reads ---------------------------------------------------------------------------
    def count(self) -> int:
        if not self._loaded():
            return 0
        rows = self._call(
            "count vectors", self.client.query, self.name, filter="", output_fields=["count(*)"]
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def ids(self) -> npt.NDArray[np.int64]:
        """Every chunk id held, ascending (an iterator: a query returns at most 16,384 rows)."""
        if not self._loaded():
            return np.empty(0, np.int64)
        found: list[int] = []
        iterator = self._call(
            "list ids",
            self.client.query_iterator,
            self.name,
            batch_size=10_000,
            filter="",
            output_fields=["chunk_id"],
        )
        try:
            while True:
                page = iterator.next()
                if not page:
                    break
                found.extend(int(row["chunk_id"]) for row in page)
        finally:
            iterator.close()
        return np.sort(np.asarray(found, dtype=np.int64))

    def search(
        self,
        query: npt.NDArray[np.float32],
        k: int,
        within: npt.NDArray[np.int64] | None = None,
    ) -> list[tuple[int, float]]:
        """The k nearest chunk ids by inner product, best first; only among `within` when
        given (a filter expression on the primary key: Milvus applies it before top-k)."""
        if not self._loaded():
            return []
        _, _, search = _index_params(self.config, 0)
        vector = np.asarray(query, dtype=np.float32).reshape(-1).tolist()
        expressions = [""]
        if within is not None:
            if len(within) == 0:
                return []
            ids = within.tolist()
            expressions = [
                f"chunk_id in {ids[s : s + FILTER_IDS]}" for s in range(0, len(ids), FILTER_IDS)
            ]
        found: list[tuple[int, float]] = []
        for expression in expressions:
            result = self._call(
                "search",
                self.client.search,
                self.name,
                data=[vector],
                limit=k,
                filter=expression,
                output_fields=["chunk_id"],
                search_params={"metric_type": "IP", "params": search},
            )
            found.extend((int(hit["chunk_id"]), float(hit["distance"])) for hit in result[0])
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found[:k]
