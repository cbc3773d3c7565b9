from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import HALUEVAL_SAMPLE, PUBLIC_SAMPLE, SQUAD_SAMPLE
from verirag.pipeline.evaluation.datasets import (
    DatasetError,
    EvalItem,
    HaluItem,
    Passage,
    SharedDataMissingError,
    context_id,
    detect_format,
    leave_out_gold,
    load_eval_dataset,
    load_squad,
    sample_halu,
    sample_items,
    shared_data_dir,
    shared_data_file,
)
from verirag.pipeline.evaluation.datasets.halueval import pair_id

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eval"


def write_lines(path: Path, records: list[Any]) -> Path:
    """One JSON value per line; a str is written as it is (for broken lines)."""
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


def squad_doc(qa: dict[str, Any] | None = None) -> dict[str, Any]:
    qa = qa or {"id": "x1", "question": "Q?", "answers": [{"text": "A"}]}
    return {"data": [{"title": "T_1", "paragraphs": [{"context": "A text.", "qas": [qa]}]}]}


# --- fixtures in the repository -------------------------------------------------------------------


def test_squad_fixture() -> None:
    data = load_eval_dataset(FIXTURES / "squad_tiny.json")
    assert data.format == "squad"
    assert [p.pid for p in data.passages] == ["squad-0-0", "squad-0-1", "squad-1-0"]
    assert data.passages[0].title == "Lake Varnel"
    assert len(data.items) == 6
    assert data.items[1] == EvalItem(
        "tiny-2",
        "In which province is Lake Varnel?",
        ("Osterby", "the made-up province of Osterby"),
        frozenset({"squad-0-0"}),
    )
    assert data.items[5].relevant == frozenset({"squad-1-0"})
    assert data.halu == []
    # The old reader gives the same passages and questions.
    passages, questions = load_squad(FIXTURES / "squad_tiny.json")
    assert passages == data.passages
    assert [(q.qid, q.answers, q.relevant) for q in questions] == [
        (i.item_id, i.answers, i.relevant) for i in data.items
    ]


def test_beir_fixture() -> None:
    data = load_eval_dataset(FIXTURES / "beir_tiny")
    assert data.format == "beir"
    assert [p.pid for p in data.passages] == ["d1", "d2", "d3", "d4", "d5"]
    assert data.passages[4] == Passage("d5", "", data.passages[4].text)  # title is optional
    assert [(i.item_id, i.relevant, i.answers) for i in data.items] == [
        ("q1", frozenset({"d1"}), ()),
        ("q2", frozenset({"d2", "d3"}), ()),
        ("q3", frozenset({"d4"}), ()),  # d5 has score 0: judged, not relevant
    ]


def test_halueval_pair_ids_come_from_the_record_not_its_line(tmp_path: Path) -> None:
    """The same record has the same id in the full file and in a sample of it (a calibration's
    exclusion list names records, not lines); a repeated record is read once."""
    lines = (FIXTURES / "halueval_tiny.jsonl").read_text().splitlines()
    full = tmp_path / "full.jsonl"
    full.write_text("\n".join(lines) + "\n")
    sample = tmp_path / "sample.jsonl"
    sample.write_text("\n".join([lines[2], lines[1], lines[2]]) + "\n")
    whole = {h.question: h.pair_id for h in load_eval_dataset(full).halu}
    part = load_eval_dataset(sample).halu
    assert len(part) == 4  # the repeated record once, as a right and a hallucinated item
    assert all(whole[h.question] == h.pair_id for h in part)


def test_halueval_summarization_records_are_pairs_over_their_document(tmp_path: Path) -> None:
    """A summarization record is the right and the hallucinated answer to a fixed request over
    its document, so the hallucination suite scores it as it scores QA; a summary left empty
    is named, with its line."""
    from verirag.pipeline.evaluation.datasets.halueval import SUMMARY_REQUEST

    doc = "Kesk council opened a ferry to Arvet on Monday. It runs twice a day."
    path = tmp_path / "summarization.jsonl"
    record = {"document": doc, "right_summary": "A ferry now links Kesk and Arvet.",
              "hallucinated_summary": "A bridge now links Kesk and Arvet."}  # fmt: skip
    path.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    data = load_eval_dataset(path)
    assert data.format == "halueval" and len(data.halu) == 2  # the repeat read once
    right, wrong = data.halu
    assert (right.knowledge, right.question, right.answer) == (
        doc, SUMMARY_REQUEST, "A ferry now links Kesk and Arvet."
    )  # fmt: skip
    assert wrong.hallucinated and not right.hallucinated and right.pair_id == wrong.pair_id
    assert right.pair_id == pair_id(SUMMARY_REQUEST, doc)
    path.write_text(json.dumps({**record, "hallucinated_summary": " "}) + "\n")
    with pytest.raises(
        DatasetError, match=r'summarization.jsonl:1: "hallucinated_summary" must not be empty'
    ):
        load_eval_dataset(path)
    # The committed sample of the public file reads the same way.
    sample = load_eval_dataset(
        PUBLIC_SAMPLE / "halueval_summarization" / "summarization.jsonl"
    ).halu
    assert len(sample) == 80 and sum(h.hallucinated for h in sample) == 40


def test_halueval_fixture() -> None:
    data = load_eval_dataset(FIXTURES / "halueval_tiny.jsonl")
    assert data.format == "halueval"
    assert data.passages == [] and data.items == []
    ids = [pair_id(h.question, h.knowledge) for h in data.halu[::2]]
    assert len(set(ids)) == 3 and all(i.startswith("h") and len(i) == 13 for i in ids)
    assert [(h.item_id, h.pair_id, h.hallucinated) for h in data.halu] == [
        (f"{i}-{kind}", i, kind == "hallucinated")
        for i in ids
        for kind in ("right", "hallucinated")
    ]
    assert data.halu[3] == HaluItem(
        f"{ids[1]}-hallucinated",
        ids[1],
        "Juna Arvet wrote the novel Salt Orchard. She was born in the fishing village of Kesk.",
        "Where was the author of Salt Orchard born?",
        "She was born in the capital city, Arvet.",
        True,
    )


def test_plain_fixture() -> None:
    data = load_eval_dataset(FIXTURES / "plain.jsonl")
    assert data.format == "jsonl"
    engine = "The Marl engine is a small pump engine that burns rapeseed oil."
    hamlet = "Ferrow is a hamlet with a single chapel and no school."
    # The engine context appears twice but is one passage.
    assert [p.text for p in data.passages] == [
        engine,
        "The ceiling of the Ferrow chapel was painted by Ilse Damar in 1730.",
        hamlet,
    ]
    assert all(p.title == "" and p.pid == context_id(p.text) for p in data.passages)
    assert context_id(engine).startswith("ctx-") and len(context_id(engine)) == 16
    ids = [i.item_id for i in data.items]
    assert ids == ["p1", "p2", "q4", "p4"]  # default id from the line number (blank line 3)
    assert data.items[0].relevant == data.items[1].relevant == {context_id(engine)}
    assert data.items[1].answers == ("a pump", "pump")
    assert len(data.items[2].relevant) == 2
    last = data.items[3]
    assert (last.answerable, last.answers, last.relevant) == (False, (), frozenset())


# --- detection ------------------------------------------------------------------------------------


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(FIXTURES / "squad_tiny.json") == "squad"
    assert detect_format(FIXTURES / "beir_tiny") == "beir"
    assert detect_format(FIXTURES / "halueval_tiny.jsonl") == "halueval"
    assert detect_format(FIXTURES / "plain.jsonl") == "jsonl"
    with pytest.raises(DatasetError, match="supported formats") as err:
        detect_format(write_lines(tmp_path / "data.csv", ["a,b"]))
    assert str(err.value).startswith(f"{tmp_path / 'data.csv'}: unknown file type '.csv'")
    with pytest.raises(DatasetError, match="supported formats"):
        detect_format(write_lines(tmp_path / "list.json", [[1, 2]]))
    with pytest.raises(DatasetError, match=r"corpus\.jsonl"):
        detect_format(tmp_path)
    with pytest.raises(DatasetError, match="no such file or directory"):
        detect_format(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="no such file or directory"):
        load_eval_dataset(tmp_path / "missing.json")


def test_explicit_format_overrides_detection(tmp_path: Path) -> None:
    # A HaluEval-looking file read as plain JSONL fails on its unknown keys.
    with pytest.raises(DatasetError, match="unknown key"):
        load_eval_dataset(FIXTURES / "halueval_tiny.jsonl", "jsonl")
    with pytest.raises(DatasetError, match="BEIR directory"):
        load_eval_dataset(FIXTURES / "plain.jsonl", "beir")


def test_dataset_error_format(tmp_path: Path) -> None:
    err = DatasetError(tmp_path / "a.jsonl", "boom", 3)
    assert isinstance(err, ValueError)
    assert str(err) == f"{tmp_path / 'a.jsonl'}:3: boom"
    assert (err.path, err.line, err.message) == (tmp_path / "a.jsonl", 3, "boom")
    assert str(DatasetError(Path("x.json"), "boom")) == "x.json: boom"


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no questions"):
        load_eval_dataset(write_lines(tmp_path / "e.json", [{"data": []}]))
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no questions"):
        load_eval_dataset(blank, "jsonl")


# --- SQuAD errors ---------------------------------------------------------------------------------


def test_squad_syntax_error_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "data": [\n    {"title": "x",}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match="not valid JSON") as err:
        load_eval_dataset(path, "squad")
    assert err.value.line == 3
    assert str(err.value).startswith(f"{path}:3: ")
    with pytest.raises(DatasetError) as err:
        load_squad(path)  # the old entry point fails the same way
    assert err.value.line == 3


@pytest.mark.parametrize(
    ("qa", "message"),
    [
        ({"id": "x1", "answers": []}, 'data[0].paragraphs[0].qas[0]: expected "question"'),
        ({"question": "Q?", "answers": []}, 'qas[0]: expected "id"'),
        ({"id": "x1", "question": "Q?"}, 'qas[0]: expected "answers" (a list)'),
        (
            {"id": "x1", "question": "Q?", "answers": [{"answer_start": 1}]},
            'qas[0].answers[0]: expected an object with "text"',
        ),
    ],
)
def test_squad_structure_errors_name_the_json_path(
    tmp_path: Path, qa: dict[str, Any], message: str
) -> None:
    path = write_lines(tmp_path / "s.json", [squad_doc(qa)])
    with pytest.raises(DatasetError, match=re.escape(message)):
        load_eval_dataset(path)


def test_squad_missing_context_and_duplicate_ids(tmp_path: Path) -> None:
    doc = squad_doc()
    del doc["data"][0]["paragraphs"][0]["context"]
    with pytest.raises(DatasetError, match=r'data\[0\]\.paragraphs\[0\]: expected "context"'):
        load_eval_dataset(write_lines(tmp_path / "a.json", [doc]))
    doc = squad_doc()
    para = doc["data"][0]["paragraphs"][0]
    para["qas"].append(dict(para["qas"][0]))
    with pytest.raises(DatasetError, match='duplicate id "x1"'):
        load_eval_dataset(write_lines(tmp_path / "b.json", [doc]))
    with pytest.raises(DatasetError, match='"data" list'):
        load_eval_dataset(write_lines(tmp_path / "c.json", [{"data": {}}]), "squad")


def test_squad_v2_impossible_questions(tmp_path: Path) -> None:
    doc = squad_doc()
    doc["data"][0]["paragraphs"][0]["qas"].append(
        {
            "id": "x2",
            "question": "Q2?",
            "answers": [],
            "plausible_answers": [{"text": "A"}],
            "is_impossible": True,
        }
    )
    data = load_eval_dataset(write_lines(tmp_path / "v2.json", [doc]))
    assert data.items[0].answerable and data.items[0].relevant == {"squad-0-0"}
    assert data.items[1] == EvalItem("x2", "Q2?", (), frozenset(), answerable=False)


# --- BEIR errors ----------------------------------------------------------------------------------


def beir_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / "beir_tiny", tmp_path / "beir"))


def test_beir_bad_qrels_row(tmp_path: Path) -> None:
    root = beir_copy(tmp_path)
    qrels = root / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8") + "q1\td2\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="expected 3 tab-separated columns") as err:
        load_eval_dataset(root)
    assert (err.value.path, err.value.line) == (qrels, 7)


def test_beir_qrels_errors_and_locations(tmp_path: Path) -> None:
    root = beir_copy(tmp_path)
    qrels = root / "qrels" / "test.tsv"
    qrels.write_text("q1\td9\t1\n", encoding="utf-8")  # no header is fine, d9 is not
    with pytest.raises(DatasetError, match='unknown corpus id "d9"') as err:
        load_eval_dataset(root)
    assert err.value.line == 1
    qrels.write_text("q7\td1\t1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match='unknown query id "q7"'):
        load_eval_dataset(root)
    qrels.write_text("q1\td1\thigh\n", encoding="utf-8")
    with pytest.raises(DatasetError, match='score "high" is not a number'):
        load_eval_dataset(root)
    # qrels.tsv at the top wins over qrels/test.tsv; without either, the error says what to add.
    (root / "qrels.tsv").write_text("q2\td2\t1\n", encoding="utf-8")
    assert [i.item_id for i in load_eval_dataset(root).items] == ["q2"]
    shutil.rmtree(root / "qrels")
    (root / "qrels.tsv").unlink()
    with pytest.raises(DatasetError, match=r"no qrels: expected qrels\.tsv"):
        load_eval_dataset(root)


def test_beir_corpus_and_query_errors(tmp_path: Path) -> None:
    root = beir_copy(tmp_path)
    corpus = root / "corpus.jsonl"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    write_lines(corpus, [*lines[:2], {"title": "no id", "text": "x"}])
    with pytest.raises(DatasetError, match='missing key "_id"') as err:
        load_eval_dataset(root)
    assert (err.value.path, err.value.line) == (corpus, 3)
    write_lines(corpus, [*lines, lines[0]])
    with pytest.raises(DatasetError, match=r'duplicate "_id" "d1" \(first on line 1\)'):
        load_eval_dataset(root)
    write_lines(corpus, lines)
    write_lines(root / "queries.jsonl", [{"_id": "q1"}])
    with pytest.raises(DatasetError, match='missing key "text"'):
        load_eval_dataset(root)


# --- HaluEval and plain JSONL errors --------------------------------------------------------------


def test_halueval_missing_key_and_bad_line(tmp_path: Path) -> None:
    good = json.loads((FIXTURES / "halueval_tiny.jsonl").read_text(encoding="utf-8").split("\n")[0])
    broken = {k: v for k, v in good.items() if k != "hallucinated_answer"}
    path = write_lines(tmp_path / "h.jsonl", [good, "", broken])
    with pytest.raises(DatasetError, match='missing key "hallucinated_answer"') as err:
        load_eval_dataset(path)
    assert err.value.line == 3
    path = write_lines(tmp_path / "h2.jsonl", [good, good, '{"knowledge": "x",'])
    with pytest.raises(DatasetError, match="not valid JSON") as err:
        load_eval_dataset(path, "halueval")
    assert err.value.line == 3


def test_plain_bad_json_line_has_its_number(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "p.jsonl", [{"question": "Q1?"}, "", '{"question": "Q2?"'])
    with pytest.raises(DatasetError, match="not valid JSON") as err:
        load_eval_dataset(path)
    assert str(err.value).startswith(f"{path}:3: ")


@pytest.mark.parametrize(
    ("records", "message", "line"),
    [
        ([{"question": "Q?", "answer": ["A"]}], r'unknown key\(s\) "answer"; allowed', 1),
        ([{"question": "Q?"}, {"answers": ["A"]}], 'missing key "question"', 2),
        ([{"question": "  "}], '"question" must not be empty', 1),
        ([{"question": "Q?", "answers": "A"}], '"answers" must be a list of strings', 1),
        ([{"question": "Q?", "contexts": [""]}], "empty strings", 1),
        ([{"question": "Q?", "answerable": "no"}], '"answerable" must be true or false', 1),
        (
            [{"question": "Q?", "answers": ["A"], "answerable": False}],
            "must have no answers",
            1,
        ),
        (
            [{"id": "a", "question": "Q?"}, {"id": "a", "question": "Q2?"}],
            r'duplicate id "a" \(first on line 1\)',
            2,
        ),
        (["[1, 2]"], "expected a JSON object", 1),
    ],
)
def test_plain_jsonl_errors(tmp_path: Path, records: list[Any], message: str, line: int) -> None:
    path = write_lines(tmp_path / "p.jsonl", records)
    with pytest.raises(DatasetError, match=message) as err:
        load_eval_dataset(path, "jsonl")
    assert err.value.line == line


# --- sampling and leaving gold out ----------------------------------------------------------------


def make_items(n: int) -> list[EvalItem]:
    return [EvalItem(f"i{k}", f"Q{k}?", ("A",), frozenset({f"p{k // 2}"})) for k in range(n)]


def test_sample_items_is_seeded_and_keeps_order() -> None:
    items = make_items(50)
    first = sample_items(items, 10, seed=3)
    assert first == sample_items(items, 10, seed=3)
    assert first != sample_items(items, 10, seed=4)
    assert len(first) == 10
    assert first == sorted(first, key=items.index)
    assert sample_items(items, None, seed=3) == items
    assert sample_items(items, 50, seed=3) == items
    assert sample_items(items, 99, seed=3) == items
    assert sample_items(items, 0, seed=3) == []
    with pytest.raises(ValueError, match=">= 0"):
        sample_items(items, -1, seed=3)


def test_sample_halu_takes_whole_pairs() -> None:
    halu = [
        HaluItem(f"{k}-{kind}", str(k), "K", "Q?", kind, kind == "hallucinated")
        for k in range(20)
        for kind in ("right", "hallucinated")
    ]
    sample = sample_halu(halu, 5, seed=1)
    assert sample == sample_halu(halu, 5, seed=1)
    assert len(sample) == 10
    pairs = {h.pair_id for h in sample}
    assert len(pairs) == 5
    assert all(sum(h.pair_id == p for h in sample) == 2 for p in pairs)
    assert sum(h.hallucinated for h in sample) == 5
    assert sample == [h for h in halu if h.pair_id in pairs]  # original order
    assert sample_halu(halu, None, seed=1) == halu
    assert sample_halu(halu, 20, seed=1) == halu


def test_leave_out_gold_removes_shared_paragraphs() -> None:
    # Two questions per paragraph, as in SQuAD; one item with no gold and one already
    # unanswerable.
    items = [
        *make_items(10),
        EvalItem("nogold", "Q?", (), frozenset()),
        EvalItem("unans", "Q?", (), frozenset({"p0"}), answerable=False),
    ]
    passages = [Passage(f"p{k}", "", f"text {k}") for k in range(6)]  # p5 answers nothing
    kept, updated = leave_out_gold(passages, items, share=0.25, seed=5)
    chosen_count = round(0.25 * len(items))  # 3 items chosen
    kept_ids = {p.pid for p in kept}
    removed = {p.pid for p in passages} - kept_ids
    assert 2 <= len(removed) <= chosen_count
    assert "p5" in kept_ids
    assert [p for p in passages if p.pid in kept_ids] == kept  # order kept
    assert [i.item_id for i in updated] == [i.item_id for i in items]
    for before, after in zip(items, updated, strict=True):
        gone = bool(before.relevant) and before.relevant <= removed
        assert after.answerable == (before.answerable and not gone)
        assert (after.answers, after.relevant) == (before.answers, before.relevant)
    # Both questions of a removed paragraph lose their answer, chosen or not.
    assert sum(not i.answerable for i in updated[:10]) == 2 * len(removed)
    assert leave_out_gold(passages, items, 0.25, seed=5) == (kept, updated)
    assert leave_out_gold(passages, items, 0.0, seed=5) == (passages, items)
    everything = leave_out_gold(passages, items, 1.0, seed=5)
    assert [p.pid for p in everything[0]] == ["p5"]
    with pytest.raises(ValueError, match="share"):
        leave_out_gold(passages, items, 1.5, seed=5)


def test_leave_out_gold_on_the_squad_fixture() -> None:
    data = load_eval_dataset(FIXTURES / "squad_tiny.json")
    kept, items = leave_out_gold(data.passages, data.items, share=1 / 6, seed=0)
    assert len(kept) == 2  # one question chosen: its paragraph goes
    assert sum(not i.answerable for i in items) == 2  # and both its questions are unanswerable


# --- the public data: committed samples, and the shared folder -----------------------------------


def test_the_public_samples_are_real_squad_and_halueval_files() -> None:
    data = load_eval_dataset(SQUAD_SAMPLE)
    assert (data.format, len(data.passages), len(data.items)) == ("squad", 600, 3033)
    assert len({p.title for p in data.passages}) == 48  # every article of SQuAD v1.1 dev
    assert all(i.answerable and i.answers for i in data.items)
    halu = load_eval_dataset(HALUEVAL_SAMPLE)
    assert (halu.format, len(halu.halu)) == ("halueval", 600)
    assert sum(h.hallucinated for h in halu.halu) == 300


def test_shared_data_dir_is_the_variable_or_beside_the_repository(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VERIRAG_SHARED_DATA", str(tmp_path))
    assert shared_data_dir() == tmp_path
    monkeypatch.delenv("VERIRAG_SHARED_DATA")
    repository = Path(__file__).resolve().parents[2]
    assert shared_data_dir() == repository.parent / "shared" / "data"


def test_a_missing_shared_file_names_itself_and_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VERIRAG_SHARED_DATA", str(tmp_path))
    with pytest.raises(SharedDataMissingError) as missing:
        shared_data_file("squad_v1.1_dev/dev-v1.1.json")
    message = str(missing.value)
    assert str(tmp_path / "squad_v1.1_dev" / "dev-v1.1.json") in message
    assert f"VERIRAG_SHARED_DATA={tmp_path}" in message
    monkeypatch.delenv("VERIRAG_SHARED_DATA")
    with pytest.raises(SharedDataMissingError, match="VERIRAG_SHARED_DATA is not set"):
        shared_data_file("no-such-file.jsonl")
    monkeypatch.setenv("VERIRAG_SHARED_DATA", str(PUBLIC_SAMPLE))
    assert shared_data_file("halueval_qa/qa.jsonl") == HALUEVAL_SAMPLE
