"""The human review queue: every REVIEW answer, stored with its evidence until a person
resolves it. SQLite at `<data_dir>/review.sqlite`; answers are stored as JSON."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from verirag.core.db import connect, purge_wal
from verirag.core.records import Answer, split_collections

Resolution = Literal["correct", "incorrect", "partially-correct", "corrected"]
# "corrected": the reviewer replaced the answer with `corrected_text` (the delivered text was
# not right as it stood).
RESOLUTIONS: tuple[str, ...] = ("correct", "incorrect", "partially-correct", "corrected")
# As labelled data for calibration: was the answer right as verirag gave it?
_RIGHT_AS_GIVEN = {
    "correct": True,
    "incorrect": False,
    "partially-correct": False,
    "corrected": False,
}
EXPORT_LIMIT = 100_000  # resolved items in one export
REDACTED = "[removed: a document this answer drew on was deleted]"


@dataclass(frozen=True)
class ReviewItem:
    id: int
    created_at: float
    collection: str
    question: str
    answer_text: str
    decision_reason: str
    confidence: float
    flagged_claims: int
    status: str  # open | resolved
    resolution: str | None
    note: str
    answer: dict[str, Any]  # the whole Answer as recorded
    resolved_at: float | None = None
    resolved_by: str = ""  # the name of the key (or the CLI user) that resolved it
    corrected_text: str | None = None

    def labelled(self) -> dict[str, Any]:
        """A resolved item as one labelled example for calibration: the answer's signals as
        recorded, and whether the reviewer found it right as given."""
        answer = self.answer
        return {
            "id": self.id,
            "collection": self.collection,
            "question": self.question,
            "answer_text": self.answer_text,
            "short_answer": answer.get("short_answer", ""),
            "right": _RIGHT_AS_GIVEN.get(self.resolution or ""),
            "resolution": self.resolution,
            "corrected_text": self.corrected_text,
            "note": self.note,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "decision_reason": self.decision_reason,
            "generator": answer.get("generator", ""),
            "signals": {
                name: answer.get(name)
                for name in (
                    "confidence",
                    "logprob_confidence",
                    "source_lift",
                    "answer_check",
                    "question_alignment",
                    "answer_anchor",
                    "retrieval_confidence",
                    "rests_support",
                )
            },
            "claims": [
                {k: c.get(k) for k in ("text", "verdict", "score", "judge_p", "citations")}
                for c in answer.get("claims", ())
            ],
            "sources": [
                {k: c.get(k) for k in ("number", "doc_id", "source", "title", "snippet")}
                for c in answer.get("citations", ())
            ],
        }


class ReviewQueue:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.db = connect(path)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS reviews (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "created_at REAL NOT NULL, collection TEXT NOT NULL, question TEXT NOT NULL, "
            "answer_text TEXT NOT NULL, decision_reason TEXT NOT NULL, confidence REAL NOT NULL,"
            " flagged_claims INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'open', "
            "resolution TEXT, note TEXT NOT NULL DEFAULT '', resolved_at REAL, "
            "answer_json TEXT NOT NULL)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS reviews_status ON reviews(status, collection)")
        # Queues written before reviewers were recorded gain the columns in place.
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(reviews)")}
        for column, kind in (
            ("resolved_by", "TEXT NOT NULL DEFAULT ''"),
            ("corrected_text", "TEXT"),
        ):
            if column not in columns:
                self.db.execute(f"ALTER TABLE reviews ADD COLUMN {column} {kind}")

    def add(self, answer: Answer) -> int:
        with self._lock:
            cur = self.db.execute(
                "INSERT INTO reviews(created_at, collection, question, answer_text, "
                "decision_reason, confidence, flagged_claims, answer_json) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (
                    time.time(),
                    answer.collection,
                    answer.question,
                    answer.text,
                    answer.decision_reason,
                    answer.confidence,
                    len(answer.flagged),
                    json.dumps(asdict(answer), default=str),
                ),
            )
            assert cur.lastrowid is not None
            return int(cur.lastrowid)

    def _item(self, row: tuple[Any, ...]) -> ReviewItem:
        return ReviewItem(
            id=row[0],
            created_at=row[1],
            collection=row[2],
            question=row[3],
            answer_text=row[4],
            decision_reason=row[5],
            confidence=row[6],
            flagged_claims=row[7],
            status=row[8],
            resolution=row[9],
            note=row[10],
            answer=json.loads(row[11]),
            resolved_at=row[12],
            resolved_by=row[13],
            corrected_text=row[14],
        )

    _COLUMNS = (
        "id, created_at, collection, question, answer_text, decision_reason, confidence, "
        "flagged_claims, status, resolution, note, answer_json, resolved_at, resolved_by, "
        "corrected_text"
    )

    def list(
        self,
        status: str | None = "open",
        collections: Sequence[str] | None = None,
        limit: int = 100,
        reason: str | None = None,
    ) -> list[ReviewItem]:
        """Newest first. `collections` None: all; else only items whose every collection is
        among them (an answer drawn from several quotes them all). `reason`: the decision
        reason contains it (any case)."""
        query = f"SELECT {self._COLUMNS} FROM reviews WHERE 1=1"
        args: list[Any] = []
        if status:
            query += " AND status=?"
            args.append(status)
        if reason:
            query += " AND instr(lower(decision_reason), ?) > 0"
            args.append(reason.lower())
        if collections is None:
            query += " ORDER BY id DESC LIMIT ?"
            args.append(limit)
            return [self._item(r) for r in self.db.execute(query, args)]
        allowed = set(collections)
        query += " ORDER BY id DESC"
        items = []
        for row in self.db.execute(query, args):
            if set(split_collections(row[2])) <= allowed:
                items.append(self._item(row))
                if len(items) == limit:
                    break
        return items

    def resolved(self, collections: Sequence[str] | None = None) -> Sequence[ReviewItem]:
        """Every resolved item (up to `EXPORT_LIMIT`), oldest first: what an export writes."""
        return self.list("resolved", collections, EXPORT_LIMIT)[::-1]

    def reasons(self, collections: Sequence[str] | None = None) -> Sequence[str]:
        """The distinct decision reasons of the items in `collections` (None: all)."""
        rows = self.db.execute("SELECT DISTINCT collection, decision_reason FROM reviews")
        allowed = None if collections is None else set(collections)
        return sorted(
            {
                str(reason)
                for label, reason in rows
                if allowed is None or set(split_collections(label)) <= allowed
            }
        )

    def get(self, item_id: int) -> ReviewItem:
        row = self.db.execute(
            f"SELECT {self._COLUMNS} FROM reviews WHERE id=?", (item_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no review item {item_id}")
        return self._item(row)

    def resolve(
        self,
        item_id: int,
        resolution: str,
        note: str = "",
        *,
        resolved_by: str = "",
        corrected_text: str | None = None,
    ) -> ReviewItem:
        """Record a verdict, who gave it and when. "corrected" needs the corrected answer; the
        other resolutions take none."""
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(RESOLUTIONS)}")
        corrected = (corrected_text or "").strip()
        if resolution == "corrected" and not corrected:
            raise ValueError("a 'corrected' resolution needs the corrected answer text")
        if resolution != "corrected" and corrected:
            raise ValueError("only a 'corrected' resolution takes a corrected answer text")
        self.get(item_id)
        with self._lock:
            self.db.execute(
                "UPDATE reviews SET status='resolved', resolution=?, note=?, resolved_at=?, "
                "resolved_by=?, corrected_text=? WHERE id=?",
                (resolution, note, time.time(), resolved_by, corrected or None, item_id),
            )
        return self.get(item_id)

    def redact_documents(self, collection: str, doc_ids: set[str]) -> int:
        """Remove deleted documents' text from the items of `collection`: their retrieved
        passages and citations go, and an answer that cited one is itself removed (with its
        claims), the item kept and marked, with its status and resolution. Returns the items
        changed."""
        changed = 0
        with self._lock:
            rows = self.db.execute(
                "SELECT id, answer_text, answer_json FROM reviews WHERE instr(',' || "
                "collection || ',', ',' || ? || ',') > 0",
                (collection,),
            ).fetchall()

            def deleted(source: dict[str, Any]) -> bool:
                # A source of an answer drawn from several collections names its own.
                return source.get("doc_id") in doc_ids and source.get("collection", "") in (
                    "",
                    collection,
                )

            for item_id, text, raw in rows:
                answer = json.loads(raw)
                cited = [c for c in answer.get("citations", ()) if deleted(c)]
                hits = [h for h in answer.get("retrieved", ()) if deleted(h)]
                if not cited and not hits:
                    continue
                answer["retrieved"] = [h for h in answer.get("retrieved", ()) if h not in hits]
                answer["citations"] = [c for c in answer.get("citations", ()) if c not in cited]
                if cited:
                    text = REDACTED
                    answer.update(
                        text=REDACTED,
                        claims=[],
                        short_answer="",
                        short_answer_named=None,
                        source_deleted=True,
                    )
                # A correction written from the deleted document may quote it: it goes too.
                self.db.execute(
                    "UPDATE reviews SET answer_text=?, answer_json=?, "
                    "corrected_text=CASE WHEN ? THEN NULL ELSE corrected_text END WHERE id=?",
                    (text, json.dumps(answer), bool(cited), item_id),
                )
                changed += 1
            if changed:
                purge_wal(self.db)
        return changed

    def remove_collection(self, collection: str) -> int:
        """Remove every item of a dropped collection (their answers quote its text); returns
        how many went."""
        with self._lock:
            removed = self.db.execute(
                "DELETE FROM reviews WHERE instr(',' || collection || ',', ',' || ? || ',') > 0",
                (collection,),
            ).rowcount
            if removed:
                purge_wal(self.db)
        return int(removed)

    def close(self) -> None:
        self.db.close()
