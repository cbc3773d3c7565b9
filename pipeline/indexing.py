"""`IndexingPipeline`: files -> documents -> chunks -> vectors -> one collection.

Incremental: a file whose size and mtime are unchanged is not even read; a document whose
content hash and chunking fingerprint are unchanged is not re-embedded. Work is committed in
batches (see `verirag.retrievers.store` for why a kill at any moment is safe).
"""

from __future__ import annotations

import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from verirag.core.db import purge_wal
from verirag.core.records import Chunk, Document, FileOutcome, IndexReport
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.pipeline.review import ReviewQueue
from verirag.retrievers.bm25 import bm25_for
from verirag.retrievers.chunking import Chunker
from verirag.retrievers.encoders import (
    SentenceTransformerEncoder,
    Vectors,
    load_tokenizer,
    model_shape,
)
from verirag.retrievers.learned_sparse import SpladeEncoder, drop_sparse_index, sparse_index_for
from verirag.retrievers.loaders import iter_files
from verirag.retrievers.staging import FileResult, FileWork, stage_file
from verirag.retrievers.store import (
    BatchWrite,
    CollectionConfig,
    FaissStore,
    collection_exists,
    drop_collection,
    list_collections,
    validate_name,
)

# The heading/title prefix the encoder sees is budgeted out of its maximum input.
_PREFIX_BUDGET = 32


@dataclass
class Progress:
    """Passed to the progress callback after every batch and every skipped file."""

    files_done: int = 0
    files_total: int = 0
    docs: int = 0
    chunks: int = 0
    elapsed: float = 0.0


# A document, its file, its chunks, and their vectors where a Ray actor already made them.
_Staged = tuple[Document, str, list[Chunk], Vectors | None]
_FileDone = tuple[str, int, int, frozenset[str]]  # path, mtime_ns, size, doc ids it holds


@dataclass
class _Pending:
    """Staged work in arrival order: chunked documents to embed, and files whose documents
    are all staged (a file's bookkeeping commits with, or after, its last document)."""

    items: list[_Staged | _FileDone] = field(default_factory=list)
    n_docs: int = 0
    n_chunks: int = 0

    def add_doc(self, item: _Staged) -> None:
        self.items.append(item)
        self.n_docs += 1
        self.n_chunks += len(item[2])

    def full(self, max_docs: int, max_chunks: int) -> bool:
        return self.n_docs >= max_docs or self.n_chunks >= max_chunks

    def take(self, max_docs: int, max_chunks: int) -> tuple[list[_Staged], list[_FileDone]]:
        docs: list[_Staged] = []
        files: list[_FileDone] = []
        n_chunks = 0
        i = 0
        while i < len(self.items):
            item = self.items[i]
            if isinstance(item[0], Document):
                if docs and (len(docs) >= max_docs or n_chunks >= max_chunks):
                    break
                staged: _Staged = item  # type: ignore[assignment]
                docs.append(staged)
                n_chunks += len(staged[2])
            else:
                files.append(item)  # type: ignore[arg-type]
            i += 1
        del self.items[:i]
        self.n_docs -= len(docs)
        self.n_chunks -= n_chunks
        return docs, files


class IndexingPipeline:
    """Cheap to construct; the embedder loads on the first batch that needs it."""

    def __init__(
        self,
        settings: Settings | None = None,
        encoder: SentenceTransformerEncoder | None = None,
        splade: SpladeEncoder | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.encoder = encoder or SentenceTransformerEncoder(
            self.settings.embedder, settings=self.settings
        )
        self._chunker: Chunker | None = None
        self._splade = splade  # made on first use from the collection's splade_model

    # -- collections ---------------------------------------------------------------------
    def collection_path(self, name: str) -> Path:
        return self.settings.collections_dir / validate_name(name)

    def collections(self) -> list[str]:
        return list_collections(self.settings.collections_dir)

    def create(self, name: str) -> bool:
        """An empty collection with this pipeline's embedder; False if it already exists."""
        if collection_exists(self.settings.collections_dir, validate_name(name)):
            return False
        self.open_store(name, create=True).close()
        return True

    def drop(self, name: str) -> int:
        """Remove a collection from disk with everything that holds its text: its uploaded
        files and the review items that quote it. Returns the review items removed."""
        drop_collection(self.settings.collections_dir, name)
        shutil.rmtree(self.settings.uploads_dir / validate_name(name), ignore_errors=True)
        review = ReviewQueue(self.settings.data_dir / "review.sqlite")
        try:
            return review.remove_collection(name)
        finally:
            review.close()

    def open_store(self, name: str, *, create: bool = False) -> FaissStore:
        path = self.collection_path(name)
        s = self.settings
        # The configuration is used only if the collection has none yet.
        config = self._index_config(s.embedder, self._embedder_shape[0]) if create else None
        store = FaissStore(path, create=config, writable=True)
        store.set_save_interval(s.faiss_save_seconds)
        return store

    def chunker(self) -> Chunker:
        if self._chunker is None:
            size = min(self.settings.chunk_tokens, self._embedder_shape[1] - _PREFIX_BUDGET)
            overlap = min(self.settings.chunk_overlap, size // 2)
            if self._embeds_here():
                tokenizer = self.encoder.tokenizer()
            else:
                tokenizer = load_tokenizer(self._embedder_path)
            self._chunker = Chunker(tokenizer, size, overlap)
        return self._chunker

    def _embeds_here(self) -> bool:
        """False where Ray actors embed and this process's encoder is not loaded yet: then
        the driver reads the model's shape and tokenizer from its files and never loads it
        (on a cluster, the head node need not hold the model at all)."""
        return self.settings.index_engine != "ray" or self.encoder.loaded

    @cached_property
    def _embedder_path(self) -> str:
        # Once per pipeline: resolving a bundled model checks its weights' stamp (and rehashes
        # them where site-packages is read-only).
        return resolve_model(self.settings.embedder, self.settings.models_dir, kind="embedder")

    @cached_property
    def _embedder_shape(self) -> tuple[int, int]:
        """(vector dimension, maximum input tokens) of the embedder."""
        if not self._embeds_here() and (shape := model_shape(self._embedder_path)):
            return shape
        return self.encoder.dim, self.encoder.max_tokens

    # -- the job -------------------------------------------------------------------------
    def run(
        self,
        paths: Iterable[Path],
        collection: str = "default",
        *,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        prune: bool = False,
        change_index: bool = False,
        progress: Callable[[Progress], None] | None = None,
    ) -> IndexReport:
        """Index `paths` into `collection`. A new collection takes the index settings; an
        existing one keeps its own unless `change_index` (only FAISS is rebuilt then)."""
        started = time.perf_counter()
        files = list(iter_files(list(paths), include, exclude))
        report = IndexReport(collection=collection)
        store = self.open_store(collection, create=True)
        try:
            self._check_compatible(store, change_index)
            chunker = self.chunker()
            store.record_chunking(chunker.size, chunker.overlap)
            fingerprint = f"{store.config.embedder}|{chunker.fingerprint()}"
            state = Progress(files_total=len(files))
            pending = _Pending()

            max_docs, max_chunks = self.settings.docs_per_batch, self.settings.chunks_per_batch

            def flush(final: bool) -> None:
                while pending.items and (final or pending.full(max_docs, max_chunks)):
                    docs, done = pending.take(max_docs, max_chunks)
                    self._flush(store, docs, done, fingerprint, report)
                state.docs = report.added + report.updated
                state.chunks = report.chunks_added
                state.elapsed = time.perf_counter() - started
                if progress:
                    progress(state)

            def file_done() -> None:
                state.files_done += 1
                if pending.full(max_docs, max_chunks):
                    flush(final=False)
                elif progress:
                    state.elapsed = time.perf_counter() - started
                    progress(state)

            if self.settings.index_engine == "ray":
                self._stage_on_ray(store, files, fingerprint, chunker, pending, report, file_done)
            else:
                for path in files:
                    self._stage_file(store, path, fingerprint, chunker, pending, report)
                    file_done()
            flush(final=True)
            if prune:
                self._prune(store, report)
            store.save()
            self._build_lexical(store)  # now, so that the first question does not pay for it
        finally:
            store.close()
        report.seconds = time.perf_counter() - started
        return report

    def _build_lexical(self, store: FaissStore) -> None:
        """The BM25 and learned sparse segments of the committed generation, saved."""
        bm25_for(store)
        if store.config.splade_model:
            if self._splade is None or self._splade.model_spec != store.config.splade_model:
                self._splade = SpladeEncoder(store.config.splade_model, settings=self.settings)
            sparse_index_for(store, self._splade)

    def _index_config(self, embedder: str, dim: int) -> CollectionConfig:
        s = self.settings
        return CollectionConfig(
            embedder=embedder,
            dim=dim,
            index_type=s.index_type,
            hnsw_m=s.hnsw_m,
            hnsw_ef_search=s.hnsw_ef_search,
            ivf_nlist=s.ivf_nlist,
            ivf_nprobe=s.ivf_nprobe,
            pq_m=s.pq_m,
            backend=s.vector_backend,
            backend_uri=s.vector_uri if s.vector_backend == "milvus" else "",
            splade_model=s.splade_model,
        )

    def _check_compatible(self, store: FaissStore, change_index: bool) -> None:
        s = self.settings
        if store.config.embedder != s.embedder:
            raise ValueError(
                f"collection '{store.name}' was built with embedder '{store.config.embedder}', "
                f"not '{s.embedder}': index with --embedder {store.config.embedder}, or use a "
                "new collection"
            )
        if change_index:
            config = self._index_config(store.config.embedder, store.config.dim)
            if config.splade_model != store.config.splade_model:
                # Another model's weights first, then the new setting: a crash in between
                # leaves the old setting with no segments, which are rebuilt on demand.
                drop_sparse_index(store)
            store.set_index_config(config)

    def _unchanged_file(
        self, store: FaissStore, path: Path, fingerprint: str, report: IndexReport
    ) -> tuple[str, os.stat_result] | None:
        """The file's key and stat when it must be read; None when it needs nothing (its
        size and mtime are unchanged, or it cannot even be stat'ed: recorded as failed)."""
        key = str(path.resolve())
        try:
            stat = path.stat()
        except OSError as exc:
            report.record(FileOutcome(key, None, "failed", reason=f"cannot read: {exc}"))
            return None
        if store.file_state(key) == (stat.st_mtime_ns, stat.st_size, fingerprint):
            for doc_id, source in store.docs_of_file(key):
                report.record(FileOutcome(source, doc_id, "unchanged"))
            return None
        return key, stat

    def _stage_on_ray(
        self,
        store: FaissStore,
        files: list[Path],
        fingerprint: str,
        chunker: Chunker,
        pending: _Pending,
        report: IndexReport,
        file_done: Callable[[], None],
    ) -> None:
        """Load and chunk on Ray Data workers and embed on an actor pool; every result comes
        back here, into the same pending batches and the same writer as in-process."""
        from verirag.retrievers.distributed import ChunkStage, EmbedStage, ray_session

        works: list[FileWork] = []
        for path in files:
            found = self._unchanged_file(store, path, fingerprint, report)
            if found is None:
                file_done()
                continue
            key, stat = found
            known = {
                doc_id: state
                for doc_id, _ in store.docs_of_file(key)
                if (state := store.doc_state(doc_id)) is not None
            }
            works.append(FileWork(key, key, stat.st_mtime_ns, stat.st_size, known))
        if not works:
            return
        with ray_session(self.settings) as (ray_data, gpus):
            ds = ray_data.from_items([{"payload": pickle.dumps(w)} for w in works])
            ds = ds.map_batches(
                ChunkStage,
                fn_constructor_args=(self.settings, chunker.size, chunker.overlap, fingerprint),
                batch_size=4,
                concurrency=1,
            )
            ds = ds.map_batches(
                EmbedStage,
                fn_constructor_args=(self.settings,),
                batch_size=self.settings.ray_embed_batch_files,
                concurrency=self.settings.ray_embed_actors,
                num_gpus=gpus,
            )
            for row in ds.iter_rows():
                self._take_result(pickle.loads(row["payload"]), pending, report)
                file_done()

    def _take_result(self, result: FileResult, pending: _Pending, report: IndexReport) -> None:
        """One file's staging, from either engine: its outcomes recorded, its chunks (and
        vectors, when an actor made them) queued, and the file marked done if read cleanly."""
        for outcome in result.outcomes:
            report.record(outcome)
        work, at = result.work, 0
        for doc, chunks in result.staged:
            vectors = None if result.vectors is None else result.vectors[at : at + len(chunks)]
            pending.add_doc((doc, work.key, chunks, vectors))
            at += len(chunks)
        if result.doc_ids is not None:
            pending.items.append((work.key, work.mtime_ns, work.size, result.doc_ids))

    def _stage_file(
        self,
        store: FaissStore,
        path: Path,
        fingerprint: str,
        chunker: Chunker,
        pending: _Pending,
        report: IndexReport,
    ) -> None:
        found = self._unchanged_file(store, path, fingerprint, report)
        if found is None:
            return
        key, stat = found
        work = FileWork(str(path), key, stat.st_mtime_ns, stat.st_size)
        max_bytes = self.settings.max_file_bytes
        result = stage_file(work, chunker, max_bytes, fingerprint, store.doc_state)
        self._take_result(result, pending, report)

    def _flush(
        self,
        store: FaissStore,
        docs: list[_Staged],
        files: list[_FileDone],
        fingerprint: str,
        report: IndexReport,
    ) -> None:
        if not docs and not files:
            return
        texts: list[str] = []
        outcomes: list[FileOutcome] = []
        made: list[Vectors] = []
        for doc, _, chunks, vectors in docs:
            existed = store.doc_state(doc.doc_id) is not None
            if vectors is None:
                texts.extend(c.embed_text(doc.title) for c in chunks)
            else:
                made.append(vectors)
            outcomes.append(
                FileOutcome(doc.source, doc.doc_id, "updated" if existed else "added", len(chunks))
            )
        staged = [(doc, file_path, fingerprint, chunks) for doc, file_path, chunks, _ in docs]
        if made and texts:  # pragma: no cover - one engine per run
            raise RuntimeError("a batch mixes embedded and unembedded documents")
        t0 = time.perf_counter()
        vectors = np.concatenate(made) if made else self.encoder.encode(texts)
        report.embed_seconds += time.perf_counter() - t0
        finished = [(p, m, s, fingerprint, ids) for p, m, s, ids in files]
        result = store.write_batch(BatchWrite(staged, vectors, finished))
        for outcome in outcomes:
            report.record(outcome)
        for doc_id, source in result.removed_docs:
            report.record(
                FileOutcome(source, doc_id, "pruned", reason="no longer in its source file")
            )
        report.chunks_added += len(result.added_chunk_ids)
        report.chunks_removed += len(result.removed_chunk_ids)

    def _prune(self, store: FaissStore, report: IndexReport) -> None:
        gone = [path for path in store.files() if not Path(path).exists()]
        doomed: list[tuple[str, str]] = []
        for path in gone:
            doomed.extend(store.docs_of_file(path))
        if not gone:
            return
        report.chunks_removed += store.delete_documents([d for d, _ in doomed], gone)
        for doc_id, source in doomed:
            report.record(FileOutcome(source, doc_id, "pruned", reason="source file is gone"))

    def delete(self, collection: str, refs: list[str]) -> list[tuple[str, str]]:
        """Delete documents by id, source, or file/directory path. Unknown refs raise."""
        store = self.open_store(collection)
        try:
            found: dict[str, str] = {}
            missing: list[str] = []
            for ref in refs:
                matches = store.find_documents(ref)
                if not matches:
                    missing.append(ref)
                found.update(matches)
            if missing:
                raise KeyError(
                    f"no document in collection '{collection}' matches: {', '.join(missing)}"
                )
            store.delete_documents(list(found))
            store.save()
            # Deleted means deleted: BM25 rebuilt without the text (its older files and
            # vocabulary removed), the WAL emptied, and the review items that drew on the
            # documents redacted.
            self._build_lexical(store)
            purge_wal(store.db)
            review = ReviewQueue(self.settings.data_dir / "review.sqlite")
            try:
                review.redact_documents(collection, set(found))
            finally:
                review.close()
            return sorted(found.items(), key=lambda kv: kv[1])
        finally:
            store.close()
