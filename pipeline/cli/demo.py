"""The demo corpus: Python's own help topics (`pydoc_data.topics`), present in every install."""

from __future__ import annotations

import json
from pathlib import Path


def write_pydoc_corpus(directory: Path) -> Path:
    """Write the help topics as JSONL (one document per topic); unchanged runs rewrite nothing."""
    from pydoc_data.topics import topics

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pydoc_topics.jsonl"
    lines = [
        json.dumps(
            {
                "id": f"pydoc:{name}",
                "title": name,
                "text": text,
                "metadata": {"corpus": "pydoc_data.topics"},
            }
        )
        for name, text in sorted(topics.items())
        if text.strip()
    ]
    payload = "\n".join(lines) + "\n"
    if not path.exists() or path.read_text() != payload:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(payload)
        tmp.replace(path)
    return path
