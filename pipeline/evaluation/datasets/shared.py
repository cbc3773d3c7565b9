"""Where the full public evaluation data lives: `shared_data_dir()` and `shared_data_file()`."""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "VERIRAG_SHARED_DATA"


class SharedDataMissingError(FileNotFoundError):
    """A public data file that is not where `shared_data_dir()` points."""


def shared_data_dir() -> Path:
    """`VERIRAG_SHARED_DATA`, else `../shared/data` beside the repository."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    # This file is <repository>/pipeline/evaluation/datasets/shared.py (resolve() follows the
    # verirag/pipeline link), so parents[4] is the folder the repository sits in.
    return Path(__file__).resolve().parents[4] / "shared" / "data"


def shared_data_file(relative: str | Path) -> Path:
    """`shared_data_dir() / relative`, which must be a file: the benchmarks and heavy runs read
    the full public data, which a clone does not carry, so say which file and how to point at
    it rather than fail later on a bare path."""
    root = shared_data_dir()
    path = root / relative
    if not path.is_file():
        env = os.environ.get(SHARED_DATA_ENV)
        where = f"{SHARED_DATA_ENV}={env}" if env else f"{SHARED_DATA_ENV} is not set"
        raise SharedDataMissingError(
            f"public evaluation data not found: {path} ({where}); set {SHARED_DATA_ENV} to "
            f"the folder that holds {Path(relative).as_posix()} (the shared data folder, "
            f"default ../shared/data beside the repository)"
        )
    return path
