"""Settings: `VERIRAG_*` environment variables, then an optional TOML file, then defaults.

Precedence (highest first): explicit keyword arguments, environment variables, the TOML file
named by `VERIRAG_CONFIG` (or `<data_dir>/verirag.toml` when it exists), built-in defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

IndexType = Literal["flat", "hnsw", "ivfpq"]
VectorBackend = Literal["faiss", "milvus"]
Device = Literal["auto", "cpu", "cuda"]
EmbedBackend = Literal["torch", "int8"]
GeneratorBackend = Literal["auto", "llama.cpp", "transformers", "openai"]
MAX_TOKENS_LIMIT = 8192  # the longest answer any generator is asked for


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "verirag"


def _config_file() -> Path | None:
    explicit = os.environ.get("VERIRAG_CONFIG")
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"VERIRAG_CONFIG points to {path}, which is not a file")
        return path
    data_dir = Path(os.environ.get("VERIRAG_DATA_DIR", default_data_dir())).expanduser()
    candidate = data_dir / "verirag.toml"
    return candidate if candidate.is_file() else None


class Settings(BaseSettings):
    """Everything a user can configure. Cheap to build; validates on construction."""

    model_config = SettingsConfigDict(env_prefix="VERIRAG_", extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir)
    model_cache: Path | None = Field(
        default=None, description="where split models are joined; default <data_dir>/models"
    )
    device: Device = "auto"
    threads: int = Field(default=0, ge=0, description="0 = one per physical core")

    embedder: str = Field(default="minilm", description="registry name, local directory, or hub id")
    embed_backend: EmbedBackend = Field(
        default="torch", description="'int8' = opt-in dynamically quantised fast path"
    )
    embed_batch_size: int = Field(default=64, ge=1, le=4096)

    chunk_tokens: int = Field(default=200, ge=16, le=8192)
    chunk_overlap: int = Field(default=32, ge=0)

    index_type: IndexType = "flat"
    # Where a new collection's vectors are searched: FAISS files beside SQLite (the default),
    # or a Milvus server or cluster at `vector_uri` (Milvus Lite's server locally).
    vector_backend: VectorBackend = "faiss"
    vector_uri: str = Field(default="", description="e.g. http://127.0.0.1:19530 for milvus")
    hnsw_m: int = Field(default=32, ge=4, le=256)
    hnsw_ef_search: int = Field(default=128, ge=8)
    ivf_nlist: int = Field(default=0, ge=0, description="0 = about 4*sqrt(n) at build time")
    ivf_nprobe: int = Field(default=16, ge=1)
    pq_m: int = Field(default=0, ge=0, description="0 = dim/8 sub-quantisers")

    max_file_bytes: int = Field(default=50 * 1024 * 1024, ge=1)
    # One batch = one transaction. Large chunk batches let the encoder sort by length across
    # many documents (less padding); a kill loses at most one batch of work.
    docs_per_batch: int = Field(default=1000, ge=1)
    chunks_per_batch: int = Field(default=512, ge=1)
    faiss_save_seconds: float = Field(
        default=60.0, ge=0.0, description="how often a long run persists its FAISS index"
    )
    top_k: int = Field(default=5, ge=1, le=1000)
    # "ray": load and chunk on Ray Data workers, embed on an actor pool; the writes stay here.
    index_engine: Literal["local", "ray"] = "local"
    ray_address: str | None = Field(
        default=None, description="an existing Ray cluster ('auto', 'ray://h:10001'); none = local"
    )
    ray_embed_actors: int = Field(
        default=1, ge=1, le=4096, description="embedding actors (one encoder each)"
    )
    # Files per embedding call on an actor. 64 (fewer, longer calls, less padding) did not
    # beat 16 on 2 cores (bench/RESULTS.md): the calls overlap less with chunking.
    ray_embed_batch_files: int = Field(default=16, ge=1, le=100_000)
    ray_gpus_per_actor: float | None = Field(
        default=None, ge=0.0, description="None = 1 when the cluster has GPUs, else 0"
    )

    # Answering
    generator: str = Field(
        default="qwen2.5-1.5b", description="registry name, .gguf path, HF directory or hub id"
    )
    generator_backend: GeneratorBackend = "auto"
    # generator_backend="openai": an OpenAI-compatible completions server (vLLM, llama.cpp's
    # server, TGI) generates and judges; the chat template and token counts stay local.
    inference_url: str | None = Field(
        default=None, description="base URL of an OpenAI-compatible server, e.g. http://h:8000/v1"
    )
    inference_api_key: SecretStr | None = Field(default=None, description="Bearer key, if any")
    inference_model: str | None = Field(
        default=None, description="the model name the server knows (default: the generator's)"
    )
    inference_tokenizer: str | None = Field(
        default=None,
        description="local model (registry name, .gguf, HF directory) whose chat template and "
        "tokenizer match the server's model (default: the generator)",
    )
    inference_timeout: float = Field(
        default=120.0, gt=0.0, description="seconds to wait for the server's next bytes"
    )
    judge: str = Field(
        default="same", description="'same' = the generator judges (shares its KV cache)"
    )
    n_ctx: int = Field(default=4096, ge=512, le=131072)
    context_tokens: int = Field(
        default=1536, ge=64, description="token budget for the sources in a prompt"
    )
    max_tokens: int = Field(default=256, ge=1, le=MAX_TOKENS_LIMIT)
    prompt_version: str = "v2"
    quarantine_source_instructions: bool = Field(
        default=True,
        description="leave sentences of a source that address an AI out of the prompt "
        "(generators/prompts/quarantine.py); off for a corpus about prompting itself",
    )
    idk_sentence: str = "I don't know based on the provided sources."
    agreement_samples: int = Field(
        default=0,
        ge=0,
        le=16,
        description="short answers sampled again to check the answer's consistency "
        "(evaluators/consistency.py; `Answer.sample_agreement`); 0 = off. Measured, not yet "
        "part of any shipped calibration",
    )
    agreement_temperature: float = Field(default=1.0, gt=0.0, le=2.0)
    retrieval_k: int = Field(default=30, ge=1, le=1000, description="candidates per retriever")
    # Chosen on 1,000 SQuAD dev questions and confirmed on 1,000 SQuADShifts Amazon ones
    # (bench/RESULTS.md): equal-weight RRF was level with BM25 alone on both; z-scores beat
    # min-max at the same equal weight on both.
    fusion_method: Literal["rrf", "convex", "zscore", "adaptive"] = Field(
        default="zscore",
        description="hybrid fusion: a convex combination of scores standardised over each "
        "side's candidates (zscore) or min-max normalised (convex), fusion_alpha = dense "
        "share; weighted RRF (rrf_k, dense_weight, bm25_weight); or RRF weighted per query by "
        "each side's peakedness",
    )
    fusion_alpha: float = Field(default=0.5, ge=0.0, le=1.0)
    # Chosen on the same 1,000 SQuAD questions and confirmed on the Amazon ones: the three
    # sides at equal shares beat the two by +0.014 and +0.043 nDCG@10 (bench/RESULTS.md).
    splade_model: str = Field(
        default="splade-tiny",
        description="learned sparse model a new collection keeps term weights of, fused as a "
        "third side of hybrid retrieval; '' = none (BM25 and dense only)",
    )
    splade_share: float = Field(
        default=1 / 3,
        ge=0.0,
        le=1.0,
        description="zscore and convex fusion: the SPLADE side's share; dense and BM25 split "
        "the rest by fusion_alpha",
    )
    splade_weight: float = Field(default=1.0, ge=0.0, description="rrf: the SPLADE side's weight")
    # Fitted on HaluEval QA; on 1,000 questions each it added +0.005 [0.000, 0.009] nDCG@10 on
    # SQuAD dev and +0.008 [0.003, 0.014] on SQuADShifts Amazon, for ~5 ms a query.
    rerank: bool = Field(
        default=True,
        description="order the fused top rerank_depth chunks again with the reranker "
        "(retrievers/rerank.py); a search can ask either way (--rerank/--no-rerank)",
    )
    rerank_model: str = Field(
        default="lexical-v1",
        description="a shipped reranker's name or a fitted reranker's .json (`make reranker`)",
    )
    rerank_depth: int = Field(default=30, ge=1, le=1000)
    rrf_k: int = Field(default=60, ge=1)
    dense_weight: float = Field(default=1.0, ge=0.0)
    bm25_weight: float = Field(default=1.0, ge=0.0)
    relevance_floor: float = Field(
        default=0.15, ge=-1.0, le=1.0, description="minimum dense cosine for a chunk to count"
    )
    max_question_chars: int = Field(default=2000, ge=1)
    max_history_chars: int = Field(
        default=8000, ge=0, description="earlier turns of a conversation, in all"
    )
    target_precision: float = Field(
        default=0.9,
        gt=0.0,
        lt=1.0,
        description="`verirag calibrate` picks the answer cut so that delivered answers are at "
        "least this often right",
    )
    thresholds_file: Path | None = Field(
        default=None, description="decision thresholds; default: the file shipped in the package"
    )

    # HTTP API (`verirag serve`)
    api_worker_threads: int = Field(
        default=0, ge=0, le=64, description="request worker threads; 0 = sized for the machine"
    )
    api_queue_limit: int = Field(
        default=8, ge=0, description="requests waiting for a worker beyond which 503 is returned"
    )
    api_index_queue_limit: int = Field(
        default=8,
        ge=0,
        description="indexing jobs waiting beyond the running one, after which uploads get 503 "
        "(jobs run on their own worker, never on the request workers)",
    )
    api_max_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    api_max_upload_bytes: int = Field(default=20 * 1024 * 1024, ge=1, description="per file")
    api_max_upload_files: int = Field(default=20, ge=1, le=1000)
    api_max_k: int = Field(default=50, ge=1, le=1000)
    api_max_tokens: int = Field(default=1024, ge=1, le=MAX_TOKENS_LIMIT)
    api_rate_limit_per_minute: int = Field(
        default=120, ge=0, description="per API key, token bucket; 0 = no limit"
    )
    api_request_timeout_seconds: float = Field(default=300.0, gt=0.0)
    api_cors_origins: list[str] = Field(default_factory=list)
    api_metrics_public: bool = Field(
        default=False, description="serve /metrics without a key (else an admin key is needed)"
    )

    @field_validator("data_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"chunk_tokens ({self.chunk_tokens})"
            )
        if self.generator_backend == "openai" and not self.inference_url:
            raise ValueError(
                "generator_backend 'openai' needs inference_url (the server's /v1 URL)"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @property
    def collections_dir(self) -> Path:
        return self.data_dir / "collections"

    @property
    def uploads_dir(self) -> Path:
        """Files uploaded over HTTP, one folder per collection."""
        return self.data_dir / "uploads"

    @property
    def models_dir(self) -> Path:
        return self.model_cache.expanduser() if self.model_cache else self.data_dir / "models"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with some fields replaced (validated again), e.g. from CLI flags."""
        clean = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**{**self.model_dump(), **clean})
