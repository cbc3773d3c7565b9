from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from verirag.core.device import cpu_threads, resolve_device, torch_runtime
from verirag.core.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    s = Settings()
    assert s.data_dir == tmp_path / ".local" / "share" / "verirag"
    assert s.models_dir == s.data_dir / "models"
    assert (s.embedder, s.index_type, s.device) == ("minilm", "flat", "auto")


def test_env_then_toml_then_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "verirag.toml"
    config.write_text('chunk_tokens = 128\nindex_type = "hnsw"\nembedder = "mpnet"\n')
    monkeypatch.setenv("VERIRAG_CONFIG", str(config))
    monkeypatch.setenv("VERIRAG_CHUNK_TOKENS", "96")
    s = Settings()
    assert s.chunk_tokens == 96  # env beats the file
    assert s.index_type == "hnsw"  # the file beats defaults
    assert Settings(chunk_tokens=64).chunk_tokens == 64  # arguments beat both
    assert s.with_overrides(embedder=None, top_k=9).embedder == "mpnet"


def test_data_dir_toml_is_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VERIRAG_CONFIG", raising=False)
    monkeypatch.setenv("VERIRAG_DATA_DIR", str(tmp_path))
    (tmp_path / "verirag.toml").write_text("top_k = 7\n")
    assert Settings().top_k == 7


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="chunk_overlap"):
        Settings(chunk_tokens=50, chunk_overlap=50)
    with pytest.raises(ValidationError, match="index_type"):
        Settings(index_type="annoy")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="unknown_field"):
        Settings(unknown_field=1)  # type: ignore[call-arg]
    monkeypatch.setenv("VERIRAG_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match="VERIRAG_CONFIG"):
        Settings()


def test_device_and_threads() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    assert cpu_threads(3) == 3
    assert cpu_threads(0) >= 1


def test_torch_runtime_readies_an_offline_quiet_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every torch model (embedder, SPLADE, transformers generator) loads through this.
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    assert torch_runtime(0, "cpu") == "cpu"
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert not hf_logging.is_progress_bar_enabled()  # type: ignore[no-untyped-call]
