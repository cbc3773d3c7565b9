"""Context packing: the best chunks first, numbered from 1, up to a token budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from verirag.core.records import Citation, SearchHit
from verirag.generators.prompts import PromptSet


@dataclass(frozen=True)
class PackedContext:
    citations: tuple[Citation, ...]  # the numbered sources in the prompt
    block: str  # their fenced text, as the generator and the judge read it

    @property
    def texts(self) -> tuple[str, ...]:
        """Each source as lexical evidence sees it: the title and headings were shown to the
        model too, so names there are grounded."""
        return tuple(f"{c.title} {' '.join(c.headings)}\n{c.snippet}" for c in self.citations)


def pack_context(
    hits: Sequence[SearchHit],
    count_tokens: Callable[[str], int],
    budget: int,
    prompts: PromptSet,
    *,
    quarantine_instructions: bool = True,
) -> PackedContext:
    """Best chunks first while they fit in `budget` tokens (a chunk that does not fit is
    skipped, a later smaller one may still fit). When even the best chunk is over budget, its
    head is kept, cut in proportion."""
    chosen: list[Citation] = []
    used = 0
    for hit in hits:
        cost = count_tokens(
            f"[{len(chosen) + 1}] {heading(hit.title, hit.headings)}\n{hit.text}\n\n"
        )
        if used + cost > budget:
            if chosen:
                continue
            keep = max(1, len(hit.text) * budget // max(cost, 1))
            hit = replace(hit, text=hit.text[:keep], end=hit.start + keep)
            cost = budget
        used += cost
        number = len(chosen) + 1
        chosen.append(
            Citation(
                number=number,
                chunk_id=hit.chunk_id,
                doc_id=hit.doc_id,
                source=hit.source,
                title=hit.title,
                start=hit.start,
                end=hit.end,
                snippet=hit.text,
                pages=hit.pages,
                headings=hit.headings,
                collection=hit.collection,
            )
        )
    block = sources_block(chosen, prompts, quarantine_instructions=quarantine_instructions)
    return PackedContext(tuple(chosen), block)


def heading(title: str, headings: Sequence[str]) -> str:
    """A source's heading line in the prompt: its title, then its section headings."""
    return " > ".join(h for h in (title, *headings) if h)


def sources_block(
    citations: Sequence[Citation], prompts: PromptSet, *, quarantine_instructions: bool = True
) -> str:
    """The fenced block of `citations`, each under its number with its heading: the sources
    as the generator and the judge read them (any subset of a packed context, numbers kept)."""
    numbered = [(c.number, heading(c.title, c.headings), c.snippet) for c in citations]
    return prompts.context_block(numbered, quarantine_instructions=quarantine_instructions)
