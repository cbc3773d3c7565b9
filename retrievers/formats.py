"""Text formats to plain text with sections: Markdown and reStructuredText headings, HTML
blocks. Pure parsing (beautifulsoup4 + lxml for HTML); `loaders.py` reads the files."""

from __future__ import annotations

import re
from typing import Any

from verirag.core.records import Section

_MD_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}[ \t]*$")


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    marks = [m.start() for m in _FENCE.finditer(text)]
    return [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]


def markdown_sections(text: str) -> tuple[Section, ...]:
    """Split at ATX headings (outside code fences), carrying the heading path."""
    fences = _fenced_ranges(text)
    heads: list[tuple[int, int, str]] = []
    for m in _MD_HEADING.finditer(text):
        if any(a <= m.start() < b for a, b in fences):
            continue
        heads.append((m.start(), len(m.group(1)), m.group(2).strip()))
    return _sections_from_heads(text, heads)


def rst_sections(text: str) -> tuple[Section, ...]:
    """reStructuredText titles: a line underlined by punctuation; levels by first use."""
    lines = text.splitlines(keepends=True)
    levels: dict[str, int] = {}
    heads: list[tuple[int, int, str]] = []
    pos = 0
    offsets = []
    for line in lines:
        offsets.append(pos)
        pos += len(line)
    for i in range(1, len(lines)):
        under = lines[i].rstrip("\r\n")
        title = lines[i - 1].strip()
        m = _RST_UNDERLINE.match(under)
        if m and title and len(under.strip()) >= len(title) and not _RST_UNDERLINE.match(title):
            level = levels.setdefault(m.group(1), len(levels) + 1)
            heads.append((offsets[i - 1], level, title))
    return _sections_from_heads(text, heads)


def _sections_from_heads(text: str, heads: list[tuple[int, int, str]]) -> tuple[Section, ...]:
    if not heads:
        return (Section(0, len(text), ()),)
    sections: list[Section] = []
    if heads[0][0] > 0 and text[: heads[0][0]].strip():
        sections.append(Section(0, heads[0][0], ()))
    stack: list[tuple[int, str]] = []
    for i, (start, level, title) in enumerate(heads):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        sections.append(Section(start, end, tuple(t for _, t in stack)))
    return tuple(sections)


_BLOCK_TAGS = (
    "p",
    "div",
    "li",
    "tr",
    "br",
    "pre",
    "blockquote",
    "section",
    "article",
    "table",
    "ul",
    "ol",
    "dd",
    "dt",
    "header",
    "footer",
    "main",
    "figure",
    "figcaption",
    "hr",
)
_DROP_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe")


def html_to_text(raw: bytes) -> tuple[str, str]:
    """(title, text) with headings rewritten as Markdown so they become sections."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            heading = " ".join(tag.get_text(" ", strip=True).split())
            tag.replace_with(f"\n\n{'#' * level} {heading}\n\n")
            if not title and level == 1:
                title = heading
    text = _block_text(soup)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return title, text


_END_OF_BLOCK = object()


def _block_text(root: Any) -> str:
    """The text of the tree with a line break after every block element, in one iterative
    pass (inserting the breaks into the tree is quadratic in its depth: 50,000 nested divs
    took minutes; recursion would overflow)."""
    from bs4.element import CData, NavigableString

    out: list[str] = []
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if node is _END_OF_BLOCK:
            out.append("\n")
        elif isinstance(node, NavigableString):
            if type(node) in (NavigableString, CData):  # not comments, doctypes ...
                out.append(str(node))
        else:
            if node.name in _BLOCK_TAGS:
                stack.append(_END_OF_BLOCK)
            stack.extend(reversed(node.contents))
    return "".join(out)
