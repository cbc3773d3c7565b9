"""Mutated files of every supported type, shared by the loader fuzz test (bounded, in CI) and
`bench/fuzz_loaders.py` (longer, time-boxed)."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

from tests.helpers import make_docx, make_pdf
from verirag.retrievers.loaders import SUPPORTED_SUFFIXES, LoadError, load_file

LIMIT = 2_000_000
MUTATIONS = ("truncate", "flip", "nul", "splice", "repeat")


def seeds(folder: Path) -> dict[str, bytes]:
    """A valid file of every supported type, to mutate."""
    pdf = make_pdf(folder / "s.pdf", ["First page text.", "Second page."], title="T").read_bytes()
    docx = make_docx(folder / "s.docx", ["Para one.", "Para two."]).read_bytes()
    text = b"# Title\n\nSome text about owls.\n\n## Part\nMore.\n"
    out = {".pdf": pdf, ".docx": docx, ".jsonl": b'{"id": "a", "text": "Owls."}\n'}
    for suffix in SUPPORTED_SUFFIXES - set(out):
        out[suffix] = (
            b"<html><head><title>T</title></head><body><h1>H</h1><p>Owls.</p></body></html>"
            if suffix in (".html", ".htm")
            else text
        )
    return out


def mutate(seed: bytes, kind: str, rng: random.Random) -> bytes:
    """`seed` damaged one way: truncated, bit-flipped, NUL run, spliced bytes, repeated run."""
    data = bytearray(seed)
    if kind == "truncate":
        data = data[: rng.randint(0, len(data))]
    elif kind == "flip":
        for _ in range(rng.randint(1, 20)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == "nul":
        i = rng.randint(0, len(data))
        data[i:i] = b"\0" * rng.randint(1, 64)
    elif kind == "splice":
        i = rng.randint(0, len(data))
        data[i:i] = rng.randbytes(rng.randint(1, 200))
    else:
        i = rng.randint(0, len(data))
        data[i:i] = data[i : i + 50] * rng.randint(2, 200)
    return bytes(data)


def load_or_reason(content: bytes, suffix: str) -> str:
    """Load `content` as a file of `suffix`: "loaded", or "failed: <reason>". Anything else a
    loader raises escapes: that is the bug a fuzzer looks for."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{suffix}"
        path.write_bytes(content)
        try:
            docs, failures = load_file(path, LIMIT)
        except LoadError as exc:
            assert str(exc), "a failure without a reason"
            return f"failed: {exc}"
        assert all(f.reason for f in failures), "a failed record without a reason"
        assert all(isinstance(d.text, str) for d in docs)
        return "loaded"
