"""Public evaluation data readers (the full files live in ../shared/data, never in the repo;
the tests read small seeded samples of them).

`load_eval_dataset` reads the formats `verirag eval` accepts: SQuAD JSON (v1.1 and v2.0), a BEIR
directory, HaluEval QA JSONL and a plain JSONL of questions. Every reader validates as it goes
and fails with a `DatasetError` that names the file, the line where there is one, and what was
expected: evaluation data is often hand-made, and a typo should not silently become a question
without answers.

One job per module: `records` (the records, the formats and `DatasetError`), `reading` (text,
JSON and JSONL reading and field checks shared by the readers), one reader per format
(`squad`, `beir`, `halueval`, `jsonl`, which also holds `write_jsonl`), `loading` (format
detection and `load_eval_dataset`), `sampling` (seeded samples, `leave_out_gold`) and `shared`
(where the full public data lives).
"""

from verirag.pipeline.evaluation.datasets.beir import QRELS_CANDIDATES
from verirag.pipeline.evaluation.datasets.jsonl import PLAIN_KEYS, context_id, write_jsonl
from verirag.pipeline.evaluation.datasets.loading import detect_format, load_eval_dataset
from verirag.pipeline.evaluation.datasets.records import (
    FORMATS,
    SUPPORTED,
    DatasetError,
    DatasetFormat,
    EvalDataset,
    EvalItem,
    HaluItem,
    Passage,
    Question,
)
from verirag.pipeline.evaluation.datasets.sampling import leave_out_gold, sample_halu, sample_items
from verirag.pipeline.evaluation.datasets.shared import (
    SHARED_DATA_ENV,
    SharedDataMissingError,
    shared_data_dir,
    shared_data_file,
)
from verirag.pipeline.evaluation.datasets.squad import load_squad, squad_sample

__all__ = [
    "FORMATS",
    "PLAIN_KEYS",
    "QRELS_CANDIDATES",
    "SHARED_DATA_ENV",
    "SUPPORTED",
    "DatasetError",
    "DatasetFormat",
    "EvalDataset",
    "EvalItem",
    "HaluItem",
    "Passage",
    "Question",
    "SharedDataMissingError",
    "context_id",
    "detect_format",
    "leave_out_gold",
    "load_eval_dataset",
    "load_squad",
    "sample_halu",
    "sample_items",
    "shared_data_dir",
    "shared_data_file",
    "squad_sample",
    "write_jsonl",
]
