"""Public evaluation data readers (the full files live in ../shared/data, never in the repo;
the tests read small seeded samples of them).

`load_eval_dataset` reads the formats `verirag eval` accepts: SQuAD JSON (v1.1 and v2.0), a BEIR
directory, HaluEval QA JSONL and a plain JSONL of questions. Every reader validates as it goes
and fails with a `DatasetError` that names the file, the line where there is one, and what was
expected: evaluation data is often hand-made, and a typo should not silently become a question
without answers.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args


@dataclass(frozen=True)
class Passage:
    pid: str
    title: str
    text: str


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    answers: tuple[str, ...]
    relevant: frozenset[str]  # passage ids


DatasetFormat = Literal["squad", "beir", "halueval", "jsonl"]
FORMATS: tuple[DatasetFormat, ...] = get_args(DatasetFormat)
SUPPORTED = (
    "supported formats: squad (a .json file with a 'data' list), beir (a directory with "
    "corpus.jsonl, queries.jsonl and qrels), halueval (.jsonl records with 'knowledge' and "
    "'right_answer'), jsonl (.jsonl records with 'question')"
)


class DatasetError(ValueError):
    """A data file that cannot be read as the expected format."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class EvalItem:
    item_id: str
    question: str
    answers: tuple[str, ...]  # gold answers, may be empty
    relevant: frozenset[str]  # ids of the passages that answer it (may be empty)
    answerable: bool = True


@dataclass(frozen=True)
class HaluItem:
    item_id: str  # "<record>-right" / "<record>-hallucinated"
    pair_id: str
    knowledge: str
    question: str
    answer: str
    hallucinated: bool


@dataclass(frozen=True)
class EvalDataset:
    path: Path
    format: DatasetFormat
    passages: list[Passage]
    items: list[EvalItem]
    halu: list[HaluItem]


SHARED_DATA_ENV = "VERIRAG_SHARED_DATA"


class SharedDataMissingError(FileNotFoundError):
    """A public data file that is not where `shared_data_dir()` points."""


def shared_data_dir() -> Path:
    """`VERIRAG_SHARED_DATA`, else `../shared/data` beside the repository."""
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    # This file is <repository>/pipeline/evaluation/datasets.py (resolve() follows the
    # verirag/pipeline link), so parents[3] is the folder the repository sits in.
    return Path(__file__).resolve().parents[3] / "shared" / "data"


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


# --- reading helpers ------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    if not path.exists():
        raise DatasetError(path, "no such file or directory")
    if not path.is_file():
        raise DatasetError(path, "expected a file, found a directory")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DatasetError(path, f"cannot read: {exc.strerror or exc}") from exc


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            path, f"not valid JSON: {exc.msg} (column {exc.colno})", exc.lineno
        ) from exc


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line."""
    for lineno, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(
                path, f"not valid JSON: {exc.msg} (column {exc.colno})", lineno
            ) from exc
        if not isinstance(record, dict):
            raise DatasetError(path, f"expected a JSON object, got {type(record).__name__}", lineno)
        yield lineno, record


def _string(record: dict[str, Any], key: str, path: Path, line: int, *, empty: bool = True) -> str:
    """A required string field of a JSONL record."""
    if key not in record:
        raise DatasetError(path, f'missing key "{key}"', line)
    value = record[key]
    if not isinstance(value, str):
        raise DatasetError(path, f'"{key}" must be a string, got {type(value).__name__}', line)
    if not empty and not value.strip():
        raise DatasetError(path, f'"{key}" must not be empty', line)
    return value


def _identifier(record: dict[str, Any], key: str, path: Path, line: int) -> str:
    # Ids are strings in BEIR, but hand-made files often write numbers; both name the same thing.
    if key not in record:
        raise DatasetError(path, f'missing key "{key}"', line)
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise DatasetError(path, f'"{key}" must be a non-empty string or integer', line)
    return str(value)


# --- SQuAD ----------------------------------------------------------------------------------------


def _read_squad(path: Path, raw: Any = None) -> tuple[list[Passage], list[tuple[str, EvalItem]]]:
    """Passages and (paragraph id, item) pairs; SQuAD v2.0 `is_impossible` questions are
    unanswerable, with no answers and no relevant passage (the paragraph does not answer them).
    `raw` is the already parsed file, when format detection has read it."""
    if raw is None:
        raw = _read_json(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise DatasetError(path, 'expected SQuAD JSON: an object with a "data" list')

    def fail(where: str, what: str) -> DatasetError:
        return DatasetError(path, f"{where}: expected {what}")

    passages: list[Passage] = []
    pairs: list[tuple[str, EvalItem]] = []
    seen: dict[str, str] = {}
    for a, article in enumerate(raw["data"]):
        at = f"data[{a}]"
        if not isinstance(article, dict):
            raise fail(at, "an object")
        if not isinstance(article.get("paragraphs", []), list):
            raise fail(at, '"paragraphs" (a list)')
        title = str(article.get("title", "")).replace("_", " ")
        for p, para in enumerate(article.get("paragraphs", [])):
            at = f"data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict):
                raise fail(at, "an object")
            if not isinstance(para.get("context"), str):
                raise fail(at, '"context" (a string)')
            if not isinstance(para.get("qas", []), list):
                raise fail(at, '"qas" (a list)')
            pid = f"squad-{a}-{p}"
            passages.append(Passage(pid, title, para["context"]))
            for q, qa in enumerate(para.get("qas", [])):
                at = f"data[{a}].paragraphs[{p}].qas[{q}]"
                if not isinstance(qa, dict):
                    raise fail(at, "an object")
                qid = qa.get("id")
                if isinstance(qid, bool) or not isinstance(qid, str | int):
                    raise fail(at, '"id" (a string)')
                if not isinstance(qa.get("question"), str):
                    raise fail(at, '"question" (a string)')
                if not isinstance(qa.get("answers"), list):
                    raise fail(at, '"answers" (a list)')
                texts: list[str] = []
                for n, answer in enumerate(qa["answers"]):
                    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
                        raise fail(f"{at}.answers[{n}]", 'an object with "text" (a string)')
                    texts.append(answer["text"])
                impossible = qa.get("is_impossible", False)
                if not isinstance(impossible, bool):
                    raise fail(at, '"is_impossible" to be true or false')
                item_id = str(qid)
                if item_id in seen:
                    raise DatasetError(
                        path, f'{at}: duplicate id "{item_id}" (first at {seen[item_id]})'
                    )
                seen[item_id] = at
                item = EvalItem(
                    item_id,
                    qa["question"],
                    () if impossible else tuple(dict.fromkeys(texts)),
                    frozenset() if impossible else frozenset({pid}),
                    answerable=not impossible,
                )
                pairs.append((pid, item))
    return passages, pairs


def load_squad(path: Path) -> tuple[list[Passage], list[Question]]:
    """SQuAD JSON: each paragraph a passage, each question relevant to its paragraph (also a
    v2.0 impossible one, which has no answers). Raises `DatasetError` on a malformed file."""
    passages, pairs = _read_squad(path)
    questions = [
        Question(item.item_id, item.question, item.answers, frozenset({pid})) for pid, item in pairs
    ]
    return passages, questions


def squad_sample(path: Path, n_passages: int, seed: int) -> tuple[list[Passage], list[Question]]:
    """A seeded sample of passages and all their questions."""
    passages, questions = load_squad(path)
    rng = random.Random(seed)
    chosen = rng.sample(passages, min(n_passages, len(passages)))
    ids = {p.pid for p in chosen}
    return chosen, [q for q in questions if q.relevant <= ids]


def write_jsonl(passages: list[Passage], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for p in passages:
            handle.write(json.dumps({"id": p.pid, "title": p.title, "text": p.text}) + "\n")
    return path


# --- BEIR -----------------------------------------------------------------------------------------

QRELS_CANDIDATES = ("qrels.tsv", "qrels/test.tsv", "qrels/dev.tsv", "qrels/train.tsv")


def _qrels_file(root: Path) -> Path:
    for name in QRELS_CANDIDATES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(
        root,
        "no qrels: expected " + ", ".join(QRELS_CANDIDATES[:-1]) + " or " + QRELS_CANDIDATES[-1],
    )


def _read_beir(root: Path) -> tuple[list[Passage], list[EvalItem]]:
    if not root.is_dir():
        raise DatasetError(root, "expected a BEIR directory (corpus.jsonl, queries.jsonl, qrels)")
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    passages: list[Passage] = []
    corpus_lines: dict[str, int] = {}
    for line, record in _jsonl_records(corpus_path):
        pid = _identifier(record, "_id", corpus_path, line)
        if pid in corpus_lines:
            raise DatasetError(
                corpus_path, f'duplicate "_id" "{pid}" (first on line {corpus_lines[pid]})', line
            )
        corpus_lines[pid] = line
        title = record.get("title", "")
        if not isinstance(title, str):
            raise DatasetError(corpus_path, '"title" must be a string', line)
        passages.append(Passage(pid, title, _string(record, "text", corpus_path, line)))

    queries: dict[str, str] = {}
    query_lines: dict[str, int] = {}
    for line, record in _jsonl_records(queries_path):
        qid = _identifier(record, "_id", queries_path, line)
        if qid in queries:
            raise DatasetError(
                queries_path, f'duplicate "_id" "{qid}" (first on line {query_lines[qid]})', line
            )
        queries[qid] = _string(record, "text", queries_path, line, empty=False)
        query_lines[qid] = line

    qrels_path = _qrels_file(root)
    relevant: dict[str, set[str]] = {}
    for line, text in enumerate(_read_text(qrels_path).splitlines(), start=1):
        if not text.strip():
            continue
        cols = [c.strip() for c in text.split("\t")]
        if line == 1 and [c.lower() for c in cols] == ["query-id", "corpus-id", "score"]:
            continue
        if len(cols) != 3:
            raise DatasetError(
                qrels_path,
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}",
                line,
            )
        qid, pid, raw_score = cols
        try:
            score = float(raw_score)
        except ValueError:
            raise DatasetError(qrels_path, f'score "{raw_score}" is not a number', line) from None
        if qid not in queries:
            raise DatasetError(qrels_path, f'unknown query id "{qid}" (not in queries.jsonl)', line)
        if pid not in corpus_lines:
            raise DatasetError(qrels_path, f'unknown corpus id "{pid}" (not in corpus.jsonl)', line)
        judged = relevant.setdefault(qid, set())
        if score > 0:
            judged.add(pid)
    # Only queries with a relevant document: the others have no gold to score retrieval against.
    items = [
        EvalItem(qid, text, (), frozenset(relevant[qid]))
        for qid, text in queries.items()
        if relevant.get(qid)
    ]
    return passages, items


# --- HaluEval -------------------------------------------------------------------------------------


def _read_halueval(path: Path) -> list[HaluItem]:
    """Each record becomes a right and a hallucinated item sharing `pair_id`, so a sample can
    keep the two answers to one question together (the benchmark is balanced by pairs)."""
    items: list[HaluItem] = []
    for n, (line, record) in enumerate(_jsonl_records(path)):
        knowledge = _string(record, "knowledge", path, line)
        question = _string(record, "question", path, line, empty=False)
        right = _string(record, "right_answer", path, line)
        wrong = _string(record, "hallucinated_answer", path, line)
        pair = str(n)
        items.append(HaluItem(f"{pair}-right", pair, knowledge, question, right, False))
        items.append(HaluItem(f"{pair}-hallucinated", pair, knowledge, question, wrong, True))
    return items


# --- plain JSONL ----------------------------------------------------------------------------------

PLAIN_KEYS = frozenset({"id", "question", "answers", "contexts", "answerable"})


def context_id(text: str) -> str:
    """Stable id of a plain-JSONL context: the same text under several questions is one passage."""
    return "ctx-" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _string_list(record: dict[str, Any], key: str, path: Path, line: int) -> list[str]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DatasetError(path, f'"{key}" must be a list of strings', line)
    return value


def _read_plain(path: Path) -> tuple[list[Passage], list[EvalItem]]:
    passages: dict[str, Passage] = {}
    items: list[EvalItem] = []
    id_lines: dict[str, int] = {}
    for line, record in _jsonl_records(path):
        unknown = sorted(set(record) - PLAIN_KEYS)
        if unknown:
            names = ", ".join(f'"{k}"' for k in unknown)
            raise DatasetError(
                path, f"unknown key(s) {names}; allowed: {', '.join(sorted(PLAIN_KEYS))}", line
            )
        question = _string(record, "question", path, line, empty=False)
        item_id = _identifier(record, "id", path, line) if "id" in record else f"q{line}"
        if item_id in id_lines:
            raise DatasetError(
                path, f'duplicate id "{item_id}" (first on line {id_lines[item_id]})', line
            )
        id_lines[item_id] = line
        answers = _string_list(record, "answers", path, line)
        contexts = _string_list(record, "contexts", path, line)
        if any(not c.strip() for c in contexts):
            raise DatasetError(path, '"contexts" must not contain empty strings', line)
        answerable = record.get("answerable", True)
        if not isinstance(answerable, bool):
            raise DatasetError(path, '"answerable" must be true or false', line)
        if not answerable and answers:
            raise DatasetError(
                path, 'an unanswerable question ("answerable": false) must have no answers', line
            )
        ids = []
        for text in contexts:
            pid = context_id(text)
            passages.setdefault(pid, Passage(pid, "", text))
            ids.append(pid)
        # An unanswerable question's contexts go into the index as distractors, but by
        # definition none of them answers it, so none is relevant.
        relevant = frozenset(ids) if answerable else frozenset()
        items.append(EvalItem(item_id, question, tuple(answers), relevant, answerable))
    return list(passages.values()), items


# --- detection and entry point --------------------------------------------------------------------


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
        raw = _read_json(path)
        if isinstance(raw, dict) and "data" in raw:
            return "squad", raw
        raise DatasetError(path, f'a .json file without a "data" key; {SUPPORTED}')
    if suffix == ".jsonl":
        for _, record in _jsonl_records(path):
            halueval = {"knowledge", "right_answer"} <= record.keys()
            return ("halueval" if halueval else "jsonl"), None
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
        passages, pairs = _read_squad(path, raw)
        items = [item for _, item in pairs]
    elif fmt == "beir":
        passages, items = _read_beir(path)
    elif fmt == "halueval":
        halu = _read_halueval(path)
    else:
        passages, items = _read_plain(path)
    if not items and not halu:
        raise DatasetError(path, f"no questions found (read as {fmt})")
    return EvalDataset(path, fmt, passages, items, halu)


# --- sampling -------------------------------------------------------------------------------------


def _check_limit(limit: int | None, what: str) -> None:
    if limit is not None and limit < 0:
        raise ValueError(f"{what} must be >= 0, got {limit}")


def sample_items(items: Sequence[EvalItem], limit: int | None, seed: int) -> list[EvalItem]:
    """A seeded sample of `limit` items, kept in data set order (all of them when `limit` is
    None or covers the data set)."""
    _check_limit(limit, "limit")
    if limit is None or limit >= len(items):
        return list(items)
    chosen = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def sample_halu(items: Sequence[HaluItem], pairs: int | None, seed: int) -> list[HaluItem]:
    """A seeded sample of whole pairs (the right and the hallucinated answer together, so the
    sample stays balanced), in data set order."""
    _check_limit(pairs, "pairs")
    pair_ids = list(dict.fromkeys(item.pair_id for item in items))
    if pairs is None or pairs >= len(pair_ids):
        return list(items)
    chosen = set(random.Random(seed).sample(pair_ids, pairs))
    return [item for item in items if item.pair_id in chosen]


def leave_out_gold(
    passages: Sequence[Passage], items: Sequence[EvalItem], share: float, seed: int
) -> tuple[list[Passage], list[EvalItem]]:
    """Remove the gold passages of a seeded `round(share * len(items))` of the items that have
    any, to test abstention: returns the kept passages and every item, where each item whose
    relevant passages are all gone is now `answerable=False` (answers and relevant kept, for
    reporting). Not only the chosen items lose their gold: SQuAD asks several questions per
    paragraph, and a question whose paragraph left with another one cannot be answered either.
    """
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must lie in [0, 1], got {share}")
    eligible = [i for i, item in enumerate(items) if item.relevant]
    count = min(round(share * len(items)), len(eligible))
    chosen = random.Random(seed).sample(eligible, count)
    removed = frozenset().union(*(items[i].relevant for i in chosen))
    kept = [p for p in passages if p.pid not in removed]
    updated = [
        replace(item, answerable=False) if item.relevant and item.relevant <= removed else item
        for item in items
    ]
    return kept, updated
