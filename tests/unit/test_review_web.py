"""The reviewer's side of the API and the web page's server half: who resolved an item and
how, corrections, filters, the labelled export, `/v1/me`, the page's security headers, and the
evidence span each claim carries for the page to highlight."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_support import Bed, api_bed
from verirag.evaluators.alignment import rests_on
from verirag.pipeline.api.sources import relative_source, source_root
from verirag.pipeline.review import ReviewQueue

CANARY = "CANARY-7f3a9"


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    with api_bed(tmp_path) as running:
        yield running


def _flagged(bed: Bed, question: str, collection: str) -> int:
    """The review item id of a question the scripted pipeline sends to review."""
    review_id = bed.rag.ask(question, collection).review_id
    assert review_id is not None
    return review_id


def test_me_names_the_key_and_only_its_collections(bed: Bed) -> None:
    me = bed.client.get("/v1/me", headers=bed.headers("a_write")).json()
    assert me == {
        "name": "writer",
        "scope": "write",
        "all_collections": False,
        "collections": ["a"],
    }
    admin = bed.client.get("/v1/me", headers=bed.headers("admin")).json()
    assert admin["all_collections"] and {"a", "b"} <= set(admin["collections"])
    assert bed.client.get("/v1/me").status_code == 401


def test_a_correction_records_who_when_and_the_new_text(bed: Bed) -> None:
    item = _flagged(bed, "review: do cats purr?", "a")
    h = bed.headers("a_write")
    missing_text = bed.client.post(
        f"/v1/review/{item}", json={"resolution": "corrected"}, headers=h
    )
    assert missing_text.status_code == 422 and "corrected answer" in missing_text.json()["detail"]
    stray_text = bed.client.post(
        f"/v1/review/{item}",
        json={"resolution": "correct", "corrected_text": "x"},
        headers=h,
    )
    assert stray_text.status_code == 422
    assert bed.rag.review_queue().get(item).status == "open"  # refused: unchanged
    done = bed.client.post(
        f"/v1/review/{item}",
        json={"resolution": "corrected", "corrected_text": " Cats purr. ", "note": "shorter"},
        headers=h,
    ).json()
    assert done["resolution"] == "corrected" and done["corrected_text"] == "Cats purr."
    assert done["resolved_by"] == "writer" and done["resolved_at"] > 0
    detail = bed.client.get(f"/v1/review/{item}", headers=h).json()
    assert detail["answer"]["text"] and detail["resolved_by"] == "writer"


def test_filters_by_collection_and_reason_stay_inside_the_key(bed: Bed) -> None:
    in_a = _flagged(bed, "review: do cats purr?", "a")
    in_b = _flagged(bed, f"review {CANARY} cats purr", "b")
    a = bed.headers("a_write")
    reason = bed.rag.review_queue().get(in_a).decision_reason
    listed = bed.client.get("/v1/review", params={"reason": reason[:8].upper()}, headers=a)
    assert [i["id"] for i in listed.json()] == [in_a]
    assert bed.client.get("/v1/review", params={"reason": "no such reason"}, headers=a).json() == []
    assert bed.client.get("/v1/review", params={"collection": "b"}, headers=a).status_code == 403
    reasons = bed.client.get("/v1/review/reasons", headers=a)
    assert reasons.json() == [reason] and CANARY not in reasons.text
    admin = bed.headers("admin")
    only_b = bed.client.get("/v1/review", params={"collection": "b"}, headers=admin).json()
    assert [i["id"] for i in only_b] == [in_b]


def test_export_is_labelled_jsonl_of_the_keys_resolved_items(bed: Bed) -> None:
    right = _flagged(bed, "review: do cats purr?", "a")
    wrong = _flagged(bed, "review: do dogs purr?", "a")
    other = _flagged(bed, f"review {CANARY} cats purr", "b")
    queue = bed.rag.review_queue()
    queue.resolve(right, "correct", resolved_by="ann")
    queue.resolve(wrong, "corrected", corrected_text="No.", resolved_by="bo")
    queue.resolve(other, "incorrect", resolved_by="cy")
    response = bed.client.get("/v1/review/export", headers=bed.headers("a_read"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows: list[dict[str, Any]] = [json.loads(line) for line in response.text.splitlines()]
    assert [(r["id"], r["right"], r["resolved_by"]) for r in rows] == [
        (right, True, "ann"),
        (wrong, False, "bo"),
    ]
    assert rows[1]["corrected_text"] == "No." and CANARY not in response.text
    assert set(rows[0]["signals"]) == {
        "confidence",
        "logprob_confidence",
        "source_lift",
        "answer_check",
        "question_alignment",
        "answer_anchor",
        "retrieval_confidence",
        "rests_support",
    }


def test_a_queue_written_before_reviewers_were_recorded_gains_the_columns(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "review.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE reviews (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, "
        "collection TEXT NOT NULL, question TEXT NOT NULL, answer_text TEXT NOT NULL, "
        "decision_reason TEXT NOT NULL, confidence REAL NOT NULL, flagged_claims INTEGER NOT "
        "NULL, status TEXT NOT NULL DEFAULT 'open', resolution TEXT, note TEXT NOT NULL DEFAULT "
        "'', resolved_at REAL, answer_json TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO reviews(created_at, collection, question, answer_text, decision_reason, "
        "confidence, flagged_claims, answer_json) VALUES (1, 'a', 'q', 't', 'r', 0.5, 1, '{}')"
    )
    db.commit()
    db.close()
    queue = ReviewQueue(path)
    try:
        old = queue.get(1)
        assert old.resolved_by == "" and old.corrected_text is None
        assert queue.resolve(1, "incorrect", resolved_by="dee").resolved_by == "dee"
    finally:
        queue.close()


def test_the_page_and_its_assets_carry_a_strict_policy(bed: Bed) -> None:
    page = bed.client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe" not in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-frame-options"] == "DENY" and "set-cookie" not in page.headers
    assert '<script src="static/app.js"' in page.text and "http" not in page.text.lower()
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        asset = bed.client.get(f"/ui/static/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert bed.client.get("/ui/static/index.html").status_code == 404
    assert bed.client.get("/ui/static/..%2F__init__.py").status_code == 404
    redirect = bed.client.get("/ui", follow_redirects=False)
    assert redirect.status_code == 308 and redirect.headers["location"] == "/ui/"


def test_the_script_never_turns_text_into_html() -> None:
    script = (Path(__file__).resolve().parents[2] / "pipeline/api/web/static/app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


def test_a_claim_rests_on_the_sentence_it_shares_most_words_with() -> None:
    source = "  The Louvre is in Paris.\nIt opened in 1793 as a museum. Cats purr!  "
    start, end = rests_on("The Louvre opened in 1793.", source) or (0, 0)
    assert source[start:end] == "It opened in 1793 as a museum."
    start, end = rests_on("The Louvre is a palace in Paris", source) or (0, 0)
    assert source[start:end] == "The Louvre is in Paris."
    assert rests_on("Quokkas hop.", source) is None
    assert rests_on("anything", "") is None


def test_source_paths_are_shown_relative_to_the_collection_root() -> None:
    root = source_root(["/srv/docs/a/x.md", "/srv/docs/b/y.md", "/srv/docs/b/z.jsonl#3", "rel"])
    assert root == "/srv/docs"
    assert relative_source("/srv/docs/b/z.jsonl#3", root) == "b/z.jsonl#3"
    assert relative_source("/elsewhere/secret/n.md", root) == "n.md"  # never the directories
    assert relative_source("notes.md", root) == "notes.md"
    assert source_root(["stdin"]) is None
    assert relative_source("/srv/docs/a/x.md", None) == "x.md"


def test_read_and_write_keys_never_see_a_server_path(bed: Bed) -> None:
    server_dir = str(bed.services.settings.data_dir.parent)
    item = _flagged(bed, "review: do cats purr?", "a")
    for role in ("a_read", "a_write"):
        h = bed.headers(role)
        job = bed.client.post(
            "/v1/collections/a/documents",
            files={"files": ("notes.txt", b"Hamsters hoard seeds.", "text/plain")},
            headers=bed.headers("a_write"),
        ).json()
        bodies = [
            bed.client.post("/v1/search", json={"query": "cats", "collection": "a"}, headers=h),
            bed.client.post("/v1/ask", json={"question": "cats?", "collection": "a"}, headers=h),
            bed.client.post(
                "/v1/ask/stream", json={"question": "cats?", "collection": "a"}, headers=h
            ),
            bed.client.get("/v1/collections/a/documents", headers=h),
            bed.client.get(f"/v1/review/{item}", headers=h),
            bed.client.get(f"/v1/jobs/{job['job_id']}", headers=h),
        ]
        for response in bodies:
            assert response.status_code == 200, response.text
            assert server_dir not in response.text, response.request.url
        listed = bodies[3].json()["items"]
        assert {d["source"] for d in listed} >= {"src-a/cats.md", "src-a/dogs.txt"}
    bed.rag.review_queue().resolve(item, "correct")
    export = bed.client.get("/v1/review/export", headers=bed.headers("a_read"))
    assert export.status_code == 200 and server_dir not in export.text
    # An admin sees the paths as indexed.
    admin = bed.client.get("/v1/collections/a/documents", headers=bed.headers("admin")).json()
    assert all(d["source"].startswith(server_dir) for d in admin["items"])


def test_a_job_reports_its_progress_while_it_runs(tmp_path: Path) -> None:
    from verirag.core.records import IndexReport
    from verirag.pipeline.api.jobs import JobRegistry, run_job
    from verirag.pipeline.indexing import Progress

    registry = JobRegistry()
    staging = tmp_path / "staging"
    staging.mkdir()
    for name in ("a.txt", "b.txt"):
        (staging / name).write_text("x")
    job = registry.add("c", ["a.txt", "b.txt"], staging)
    seen: list[tuple[str, int, int]] = []

    def index(paths: list[Path], collection: str, progress: Any) -> IndexReport:
        progress(Progress(files_done=1, files_total=2, chunks=5))
        seen.append((job.status, job.files_done, job.chunks_done))
        return IndexReport(collection=collection)

    run_job(job, registry, tmp_path / "uploads", index)
    assert seen == [("running", 1, 5)]
    assert job.status == "done" and job.files_done == 2


def test_the_job_endpoint_shows_files_done(bed: Bed) -> None:
    accepted = bed.client.post(
        "/v1/collections/a/documents",
        files=[
            ("files", ("one.txt", b"Hamsters hoard seeds.", "text/plain")),
            ("files", ("two.txt", b"Owls hunt at night.", "text/plain")),
        ],
        headers=bed.headers("a_write"),
    ).json()
    for _ in range(200):
        job = bed.client.get(f"/v1/jobs/{accepted['job_id']}", headers=bed.headers("a_read"))
        if job.json()["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    body = job.json()
    assert body["status"] == "done" and body["files_done"] == 2 and body["chunks_done"] >= 2


def test_the_cli_exports_what_the_api_exports_oldest_first(bed: Bed, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from verirag.pipeline.cli import app

    first = _flagged(bed, "review: do cats purr?", "a")
    second = _flagged(bed, "review: do dogs purr?", "a")
    queue = bed.rag.review_queue()
    queue.resolve(second, "incorrect", resolved_by="bo")
    queue.resolve(first, "correct", resolved_by="ann")
    out = tmp_path / "export.jsonl"
    data_dir = str(bed.services.settings.data_dir)
    result = CliRunner().invoke(app, ["review", "export", "-o", str(out), "--data-dir", data_dir])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [first, second]  # by creation, oldest first
    api = bed.client.get("/v1/review/export", headers=bed.headers("admin")).text
    assert [json.loads(line)["id"] for line in api.splitlines()] == [first, second]
