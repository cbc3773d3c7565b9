"""Sentence-transformers encoders: cheap to construct, the model loads once on `warm_up()`."""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from verirag.core.compute import model_call
from verirag.core.device import offline_env, torch_runtime
from verirag.core.registry import resolve_model
from verirag.core.settings import Settings
from verirag.retrievers.chunking import HfTokenizer

Vectors = npt.NDArray[np.float32]

# Queries embedded lately, per encoder: a question is often embedded again within moments (an
# eval asks each one in every retrieval mode, a user searches and then asks, or retries).
QUERY_CACHE = 512


def _quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of every Linear layer, per output channel.

    Per-tensor scales distort MiniLM noticeably (mean cosine to fp32 0.93 here); per-channel
    scales keep it at 0.98 and recall@10 within 0.01, at the same ~1.9x speed on 2 cores.
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the API works in 2.13.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        return quantize_dynamic(  # type: ignore[no-untyped-call]
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )


def model_shape(path: str) -> tuple[int, int] | None:
    """(output dimension, maximum input tokens) of a sentence-transformers model directory,
    read from its configuration files; None where its layout is not one this reads (a module
    other than Transformer, Pooling, Dense or Normalize, or a file missing), and the caller
    loads the model instead.

    Hand-read because sentence-transformers reports both only from a built model, and a Ray
    driver that builds one imports torch and loads weights it never uses (about 10 s here).
    """
    root = Path(path)

    def config(sub: str, name: str) -> dict[str, Any]:
        loaded = json.loads((root / sub / name).read_text())
        return loaded if isinstance(loaded, dict) else {}

    try:
        modules = json.loads((root / "modules.json").read_text())
        dim: int | None = None
        max_tokens: int | None = None
        for module in modules:
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            sub = str(module.get("path", ""))
            if kind == "Transformer":
                max_tokens = int(config(sub, "sentence_bert_config.json")["max_seq_length"])
                dim = int(config(sub, "config.json")["hidden_size"])
            elif kind == "Pooling":
                pooling = config(sub, "config.json")
                modes = sum(bool(v) for k, v in pooling.items() if k.startswith("pooling_mode_"))
                dim = int(pooling["word_embedding_dimension"]) * modes
            elif kind == "Dense":
                dim = int(config(sub, "config.json")["out_features"])
            elif kind != "Normalize":
                return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (dim, max_tokens) if dim and max_tokens else None


def load_tokenizer(path: str) -> HfTokenizer:
    """The embedder's tokenizer without its weights (chunking needs only the tokenizer)."""
    from transformers import AutoTokenizer

    offline_env()
    return HfTokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))


class SentenceTransformerEncoder:
    """Embeds text to L2-normalised float32 vectors (inner product = cosine).

    `backend="int8"` is the opt-in fast path: the Linear layers are dynamically quantised to
    int8 after loading (no export step, no extra dependency); `bench/index_throughput.py`
    measures its speed and recall against the default.
    """

    def __init__(
        self,
        model: str = "minilm",
        *,
        settings: Settings | None = None,
        backend: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.model_spec = model
        self.backend = backend or self.settings.embed_backend
        self.batch_size = batch_size or self.settings.embed_batch_size
        self._model: Any = None
        self._lock = threading.Lock()
        self._queries = lru_cache(maxsize=QUERY_CACHE)(self._embed_query)

    @property
    def name(self) -> str:
        return self.model_spec

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def warm_up(self) -> None:
        if self._model is None:
            self._load()

    @model_call  # loads where it will run; callers of a loaded model never wait here
    def _load(self) -> None:
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            device = torch_runtime(self.settings.threads, self.settings.device)
            path = resolve_model(self.model_spec, self.settings.models_dir, kind="embedder")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device=device, local_files_only=True)
            if self.backend == "int8":
                if device != "cpu":
                    raise ValueError("embed_backend='int8' is a CPU fast path; use device='cpu'")
                model = _quantize_int8(model)
            model.eval()
            self._model = model

    @property
    def model(self) -> Any:
        self.warm_up()
        return self._model

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise RuntimeError(f"embedder {self.model_spec} does not report a dimension")
        return int(dim)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    def tokenizer(self) -> HfTokenizer:
        return HfTokenizer(self.model.tokenizer)

    def encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # One model call per batch, so that an answer's calls can run between the batches
        # of a long indexing run (verirag/core/compute.py). Longest first, as
        # sentence-transformers sorts one call's inputs, so padding stays as low.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            out[rows] = self._encode_batch([texts[i] for i in rows])
        return out

    @model_call
    def _encode_batch(self, texts: list[str]) -> Vectors:
        # Normalised vectors make inner product a cosine.
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def encode_query(self, query: str) -> Vectors:
        """The (1, dim) vector of `query`, read-only: the same array is handed to every caller
        that asks for the same query while it stays in the cache."""
        vectors: Vectors = self._queries(query)
        return vectors

    def _embed_query(self, query: str) -> Vectors:
        vectors = self.encode([query])
        vectors.flags.writeable = False
        return vectors
