"""Format detection and the entry point, `load_eval_dataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from verirag.pipeline.evaluation.datasets.beir import read_beir
from verirag.pipeline.evaluation.datasets.halueval import is_halueval, read_halueval
from verirag.pipeline.evaluation.datasets.jsonl import read_plain
from verirag.pipeline.evaluation.datasets.reading import jsonl_records, read_json
from verirag.pipeline.evaluation.datasets.records import (
    FORMATS,
    SUPPORTED,
    DatasetError,
    DatasetFormat,
    EvalDataset,
    EvalItem,
    HaluItem,
    Passage,
)
from verirag.pipeline.evaluation.datasets.squad import read_squad


def detect_format(path: Path) -> DatasetFormat:
    """The format of `path`, from its layout and, for JSON, its first record."""
    return _detect(path)[0]


def _detect(path: Path) -> tuple[DatasetFormat, Any]:
    """The format, and the parsed document when detection had to read a whole JSON file (SQuAD
    files run to megabytes: no need to parse them twice)."""
    if not path.exists():
        raise DatasetError(path, "no such file or directory")
    if path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return "beir", None
        raise DatasetError(path, f"a directory without corpus.jsonl; {SUPPORTED}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        raw = read_json(path)
        if isinstance(raw, dict) and "data" in raw:
            return "squad", raw
        raise DatasetError(path, f'a .json file without a "data" key; {SUPPORTED}')
    if suffix == ".jsonl":
        for _, record in jsonl_records(path):
            return ("halueval" if is_halueval(record) else "jsonl"), None
        raise DatasetError(path, "empty file: no records")
    kind = repr(suffix) if suffix else "(no extension)"
    raise DatasetError(path, f"unknown file type {kind}; {SUPPORTED}")


def load_eval_dataset(path: Path, fmt: DatasetFormat | None = None) -> EvalDataset:
    """Read an evaluation data set, detecting its format unless `fmt` is given."""
    if fmt is not None and fmt not in FORMATS:
        raise DatasetError(path, f"unknown format {fmt!r}; {SUPPORTED}")
    if not path.exists():
        raise DatasetError(path, "no such file or directory")
    raw = None
    if fmt is None:
        fmt, raw = _detect(path)
    passages: list[Passage] = []
    items: list[EvalItem] = []
    halu: list[HaluItem] = []
    if fmt == "squad":
        passages, pairs = read_squad(path, raw)
        items = [item for _, item in pairs]
    elif fmt == "beir":
        passages, items = read_beir(path)
    elif fmt == "halueval":
        halu = read_halueval(path)
    else:
        passages, items = read_plain(path)
    if not items and not halu:
        raise DatasetError(path, f"no questions found (read as {fmt})")
    return EvalDataset(path, fmt, passages, items, halu)
