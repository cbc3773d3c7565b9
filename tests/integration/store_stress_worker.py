"""A writer or a searcher process for `test_store_stress.py` (hashing encoder, no model).

writer DATA_DIR FOLDER SECONDS: rewrites FOLDER's documents (add, update, delete) and indexes
it with --prune semantics, round after round, for SECONDS.
searcher DATA_DIR SECONDS OUT: searches the collection (dense and BM25) for SECONDS; writes a
JSON report to OUT: searches made, errors, and results that do not come from a committed
document (a chunk whose text does not name the document it belongs to).
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.conftest import HashEncoder  # noqa: E402
from verirag.core.settings import Settings  # noqa: E402
from verirag.pipeline.indexing import IndexingPipeline  # noqa: E402
from verirag.retrievers.bm25 import bm25_for  # noqa: E402
from verirag.retrievers.store import CollectionError, FaissStore  # noqa: E402

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
]


def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, embedder="hash-test", splade_model="", chunk_tokens=24, chunk_overlap=4
    )


def body(doc: int, version: int, rng: random.Random) -> str:
    # Every sentence names its document, so any chunk of it says whose it is.
    return " ".join(
        f"doc{doc} version{version} {rng.choice(WORDS)} {rng.choice(WORDS)}." for _ in range(8)
    )


def writer(data_dir: Path, folder: Path, seconds: float) -> None:
    rng = random.Random(7)
    pipe = IndexingPipeline(settings(data_dir), encoder=HashEncoder())  # type: ignore[arg-type]
    folder.mkdir(parents=True, exist_ok=True)
    live: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    version = 0
    while time.monotonic() < deadline:
        version += 1
        for _ in range(6):
            doc = rng.randrange(40)
            if doc in live and rng.random() < 0.3:
                (folder / f"doc{doc}.txt").unlink()
                del live[doc]
            else:
                live[doc] = version
                (folder / f"doc{doc}.txt").write_text(body(doc, version, rng))
        pipe.run([folder], "c", prune=True)
    print(json.dumps({"rounds": version}))


def searcher(data_dir: Path, seconds: float, out: Path) -> None:
    rng = random.Random()
    encoder = HashEncoder()
    path = settings(data_dir).collections_dir / "c"
    counts = {"searches": 0, "foreign": 0, "hits": 0}
    errors: list[str] = []
    store = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if store is None:
                store = FaissStore(path)
            query = f"{rng.choice(WORDS)} {rng.choice(WORDS)}"
            ranked = store.search(encoder.encode_query(query)[0], 5)
            ranked += bm25_for(store).search(query, 5)
            for hit in store.hits(ranked):
                counts["hits"] += 1
                if Path(hit.source).stem not in hit.text:
                    counts["foreign"] += 1
            counts["searches"] += 1
        except CollectionError:
            time.sleep(0.01)  # not created yet
        except Exception:
            errors.append(traceback.format_exc())
    out.write_text(json.dumps({**counts, "errors": errors}))


if __name__ == "__main__":
    role = sys.argv[1]
    if role == "writer":
        writer(Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))
    else:
        searcher(Path(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]))
