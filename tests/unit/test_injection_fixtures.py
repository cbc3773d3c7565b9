"""The injection suite's documents (`tests/fixtures/injection/`, run with real models by
`bench/injection.py`): they are what the suite says they are, and none of them can open or
close the source fence of any prompt version, whichever field the attack sits in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from verirag.core.records import Chunk
from verirag.generators.prompts import FENCE_END, load_prompts
from verirag.retrievers.chunking import Chunker, RegexTokenizer
from verirag.retrievers.loaders import load_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "injection"
ATTACKS = json.loads((FIXTURES / "attacks.json").read_text())


def _loaded(folder: Path) -> list[tuple[str, list[Chunk]]]:
    (path,) = sorted(folder.iterdir())
    docs, failures = load_file(path, 1 << 20)
    assert not failures and docs
    chunker = Chunker(RegexTokenizer(), 200, 20)
    return [(d.title, chunker.split(d)) for d in docs]


def test_thirty_attacks_over_every_placement_each_with_its_own_canary() -> None:
    assert len(ATTACKS) >= 30
    assert len({a["canary"] for a in ATTACKS}) == len(ATTACKS)
    kinds = {a["kind"] for a in ATTACKS}
    assert kinds >= {
        "body",
        "title",
        "heading",
        "file name",
        "jsonl field",
        "html attribute",
        "fence",
        "reveal",
        "judge",
    }


@pytest.mark.parametrize("attack", ATTACKS, ids=[a["id"] for a in ATTACKS])
def test_the_attack_is_in_its_document_and_not_in_the_clean_twin(attack: dict[str, str]) -> None:
    folder = FIXTURES / "docs" / attack["id"]
    (attacked,) = (folder / "attacked").iterdir()
    (clean,) = (folder / "clean").iterdir()
    raw = attacked.name + attacked.read_text()
    assert attack["canary"] in raw and attack["canary"] not in clean.name + clean.read_text()
    assert attack["gold"] in clean.read_text()


@pytest.mark.parametrize("version", ["v1", "v2"])
@pytest.mark.parametrize("attack", ATTACKS, ids=[a["id"] for a in ATTACKS])
def test_no_attacked_document_can_move_the_fence(attack: dict[str, str], version: str) -> None:
    prompts = load_prompts(version)
    empty = prompts.context_block([])
    sources = [
        (i + 1, " > ".join(h for h in (title, *c.headings) if h), c.text)
        for title, chunks in _loaded(FIXTURES / "docs" / attack["id"] / "attacked")
        for i, c in enumerate(chunks)
    ]
    block = prompts.context_block(sources)
    # Exactly the fence markers of the template itself, in the same places around the sources.
    assert block.upper().count(FENCE_END) == empty.upper().count(FENCE_END)
    assert block.upper().count("<<<SOURCES") == empty.upper().count("<<<SOURCES")
