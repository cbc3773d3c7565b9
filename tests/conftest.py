"""Shared fixtures. Network is blocked for every test: nothing may reach a model hub."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from verirag.core.settings import Settings, default_data_dir
from verirag.retrievers.chunking import RegexTokenizer
from verirag.retrievers.learned_sparse import SparseVector

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.pop("VERIRAG_CONFIG", None)

# Seeded samples of the public data (tests/fixtures/make_samples.py), laid out like the shared
# data folder. A clone has no ../shared beside it, so no test may need it: whatever falls back
# on `shared_data_dir()` (the notebooks, `verirag calibrate` without --data) reads the sample,
# and the suite behaves the same with or without the full data beside the clone.
PUBLIC_SAMPLE = Path(__file__).resolve().parent / "fixtures" / "public_sample"
SQUAD_SAMPLE = PUBLIC_SAMPLE / "squad_v1.1_dev" / "dev-v1.1.json"
HALUEVAL_SAMPLE = PUBLIC_SAMPLE / "halueval_qa" / "qa.jsonl"
SUMMARIES_SAMPLE = PUBLIC_SAMPLE / "halueval_summarization" / "summarization.jsonl"
os.environ["VERIRAG_SHARED_DATA"] = str(PUBLIC_SAMPLE)

_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (
        host.startswith("127.") or host in ("localhost", "::1") or self.family == socket.AF_UNIX
    ):
        return _real_connect(self, address)
    raise RuntimeError(f"network access blocked in tests: {address!r}")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)


# Split models are joined once per machine, not once per test.
MODEL_CACHE = Path(os.environ.get("VERIRAG_MODEL_CACHE", default_data_dir() / "models"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model_cache=MODEL_CACHE)


class HashEncoder:
    """A deterministic bag-of-words encoder (hashed tokens), for tests that need no model.

    It behaves like the real encoder's interface, and search with it is lexical, so tests
    can assert on what is found.
    """

    def __init__(self, dim: int = 64, max_tokens: int = 256) -> None:
        self.model_spec = "hash-test"
        self.dim = dim
        self.max_tokens = max_tokens
        self.calls = 0
        self.encoded = 0

    @property
    def name(self) -> str:
        return self.model_spec

    def warm_up(self) -> None:
        pass

    def tokenizer(self) -> RegexTokenizer:
        return RegexTokenizer()

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                h = int(hashlib.md5(word.strip(".,;:!?").encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0
            norm = np.linalg.norm(out[i])
            if norm:
                out[i] /= norm
        return out

    def encode_query(self, query: str) -> np.ndarray:
        return self.encode([query])


class HashSplade:
    """A deterministic stand-in for `SpladeEncoder` (no model): a text's terms are its words'
    hashed ids, each weighted 1 + log(count), so a search with it is lexical."""

    def __init__(self) -> None:
        self.model_spec = "hash-splade"
        self.encoded = 0

    @property
    def loaded(self) -> bool:
        return True

    def warm_up(self) -> None:
        pass

    def encode(self, texts: list[str], max_tokens: int = 256) -> list[SparseVector]:
        self.encoded += len(texts)
        out = []
        for text in texts:
            counts: dict[int, int] = {}
            for word in text.lower().split():
                term = int(hashlib.md5(word.strip(".,;:!?").encode()).hexdigest()[:4], 16)
                counts[term] = counts.get(term, 0) + 1
            terms = np.array(sorted(counts), dtype=np.int32)
            weights = np.array([1 + np.log(counts[t]) for t in terms.tolist()], np.float32)
            out.append(SparseVector(terms, weights))
        return out

    def encode_query(self, query: str) -> SparseVector:
        return self.encode([query])[0]


def _hash_settings(tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        embedder="hash-test",
        chunk_tokens=40,
        chunk_overlap=8,
        docs_per_batch=4,
        **{"splade_model": "", **extra},
    )


@pytest.fixture
def hash_settings(tmp_path: Path) -> Settings:
    return _hash_settings(tmp_path)


@pytest.fixture
def hash_encoder() -> HashEncoder:
    return HashEncoder()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A Milvus Lite server on 127.0.0.1 for the tests of the milvus vector backend (the same
    gRPC protocol and client as a Milvus cluster), started once per session."""
    from verirag.retrievers.milvus_vectors import milvus_lite_server

    data = tmp_path_factory.mktemp("milvus")
    with milvus_lite_server(data / "db", log=data / "server.log") as uri:
        yield uri


@pytest.fixture(params=["faiss", "milvus"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """`hash_settings` for each vector backend: the store contract's tests take this one."""
    extra: dict[str, Any] = {}
    if request.param == "milvus":
        extra = {"vector_backend": "milvus", "vector_uri": request.getfixturevalue("milvus_uri")}
    return _hash_settings(tmp_path, **extra)
