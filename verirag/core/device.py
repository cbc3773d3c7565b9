"""Device and thread-pool choice, made once per process.

On small CPUs oversubscription is the main performance trap (2 torch threads plus 2 llama
threads on 2 cores ran 5x slower here), so every backend asks this module for its count.
"""

from __future__ import annotations

import os
from functools import cache

from verirag.core.settings import Device


def offline_env() -> None:
    """Bundled models never touch a hub: fail fast instead of hanging on a socket."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def cpu_threads(requested: int = 0) -> int:
    if requested > 0:
        return requested
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        available = os.cpu_count() or 1
    return max(1, available)


@cache
def configure_torch_threads(threads: int) -> int:
    """Set torch's intra-op pool once; a second call with another size is ignored by design."""
    import torch

    torch.set_num_threads(threads)
    return threads


def torch_runtime(threads: int, device: Device) -> str:
    """Ready this process to load a bundled torch model and say where it goes: offline, the
    thread pool sized once, transformers' progress bars off (they flood logs and CI)."""
    offline_env()
    configure_torch_threads(cpu_threads(threads))
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return resolve_device(device)


def resolve_device(device: Device) -> str:
    if device != "auto":
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise RuntimeError("device='cuda' was requested but CUDA is not available")
        return device
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"
