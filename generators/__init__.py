"""LLM backends: llama.cpp for GGUF on CPU (default), transformers for HF models and GPUs, and
an OpenAI-compatible inference server (vLLM, llama.cpp's server) past one machine.

All return the same `Generation` (text, per-token logprobs with top-5 alternatives, finish
reason, token counts, timings). `make_generator` picks one from the settings.
"""

from __future__ import annotations

from verirag.core.registry import REGISTRY, resolve_model
from verirag.core.settings import Settings
from verirag.generators.base import Generation, Generator
from verirag.generators.params import GenerationError, GenerationParams

__all__ = [
    "Generation",
    "GenerationError",
    "GenerationParams",
    "Generator",
    "backend_for",
    "make_generator",
]


def backend_for(spec: str, settings: Settings) -> str:
    """llama.cpp for GGUF files and registry names, transformers for everything else."""
    if settings.generator_backend != "auto":
        return settings.generator_backend
    return "llama.cpp" if spec in REGISTRY or spec.endswith(".gguf") else "transformers"


def make_generator(spec: str, settings: Settings) -> Generator:
    """The backend `backend_for` names, for `spec`."""
    backend = backend_for(spec, settings)
    if backend == "openai":
        from verirag.generators.openai_compat import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator(spec, settings=settings)
    if backend == "llama.cpp":
        from verirag.generators.llamacpp import LlamaCppGenerator

        return LlamaCppGenerator(spec, settings=settings)
    from verirag.generators.hf import TransformersGenerator

    if spec in REGISTRY:  # a bundled GGUF through transformers: dequantised, slower on CPU
        path = resolve_model(spec, settings.models_dir, kind="generator")
        return TransformersGenerator(path, settings=settings)
    return TransformersGenerator(spec, settings=settings)
