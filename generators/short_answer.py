"""Short answers: the fewest words of a cited answer that answer the question.

The generator continues its own conversation (the answer prompt, its answer, then
`short_answer.txt`), greedily and for a few tokens, so the KV cache of the answer prompt is
reused. What it replies is kept only if it comes from the answer (a model that names words its
answer does not contain is not summarising it) and says more than the question already does.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import simplemma

from verirag.generators.base import Generator
from verirag.generators.params import GenerationParams
from verirag.generators.prompts import PromptSet

MAX_TOKENS = 24
MAX_WORDS = 15
# A reply of at most this many words is a phrase, taken as said: its words that the question
# also uses belong to it ("Butcher Market" for "What market did it replace?"). A longer reply
# is a sentence, whose question words at either end are the question restated.
PHRASE_WORDS = 3
_NONE = frozenset({"none", "n a", "na", "unknown", "no answer", "not stated", "not given"})
_CITATION = re.compile(r"\s*\[\d+\]")
_LEAD = re.compile(r"^(?:short answer|answer)\s*:\s*", re.IGNORECASE)
# Words that carry no content: a short answer made only of them (and of the question's own
# words) answers nothing.
STOP_WORDS = frozenset(
    {
        *("a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with"),
        *("and", "or", "is", "are", "was", "were", "be", "been", "it", "its"),
        *("this", "that", "these", "those", "what", "which", "who", "whom", "whose"),
        *("when", "where", "why", "how", "does", "do", "did"),
    }
)
_YES_NO = frozenset({"yes", "no", "true", "false"})


def words(text: str) -> list[str]:
    """Lower-case alphanumeric words, accents folded (so "Élysée" matches "Elysee")."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return re.findall(r"[a-z0-9]+", folded)


def clean_short_answer(raw: str, question: str = "") -> str:
    """The reply's first line without a label, citations, quotes or a final full stop, and
    without the question's own words at either end of a sentence reply (small models answer
    "The tower was completed in 1889" for "When was the tower completed?"); "" for a reply
    that declines or is not short."""
    line = raw.strip().splitlines()[0].strip() if raw.strip() else ""
    line = _CITATION.sub("", _LEAD.sub("", line)).strip().strip("\"'`*").strip()
    line = line.rstrip(".").strip()
    if not line or " ".join(words(line)) in _NONE:
        return ""
    if len(line.split()) <= PHRASE_WORDS:
        line = _trim_question_words(line, "")
    elif question:
        line = _trim_question_words(line, question)
    return line if 0 < len(line.split()) <= MAX_WORDS else ""


def stem(word: str) -> str:
    """Enough of a stemmer to match "opened" with "open" and "towers" with "tower"."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _trim_question_words(line: str, question: str) -> str:
    """`line` without the question's words and function words at either end ("" question:
    function words alone)."""
    asked = {stem(w) for w in words(question)} | STOP_WORDS
    tokens = line.split()

    def asked_word(token: str) -> bool:
        found = words(token)
        return bool(found) and all(w in STOP_WORDS or stem(w) in asked for w in found)

    while tokens and asked_word(tokens[0]):
        tokens.pop(0)
    while tokens and asked_word(tokens[-1]):
        tokens.pop()
    # All of it was the question's: keep the reply, which `answers_question` then rejects.
    return " ".join(tokens).strip(" ,;:") if tokens else line


def _asked_key(word: str) -> str:
    """`stem` with a final e dropped, so "enable" matches "enables" (stemmed "enabl")."""
    key = stem(word)
    return key[:-1] if len(key) > 4 and key.endswith("e") else key


@functools.lru_cache(maxsize=8192)
def _asked_keys(word: str) -> frozenset[str]:
    """The keys `word` matches the question's words by: its own and its dictionary form's,
    so that an irregular form meets its verb ("sang" the question's "sing", "became" its
    "become"), which no suffix rule does. simplemma is a lookup table: no model, no download."""
    return frozenset({_asked_key(word), _asked_key(simplemma.lemmatize(word, lang="en"))})


# Words that open or close a clause without saying anything ("There were five ...").
_END_WORDS = STOP_WORDS | {"there", "they", "he", "she", "also", "as", "then"}
_CLAUSE_END = re.compile(r"[.;:!?]$")


# An answer that opens by pointing at its sources ("Based on the information provided in the
# sources, ...", "According to sources [1] and [2], ...") says where it read, not what: those
# words are never the answer, yet the question does not hold them, so an extraction would
# take them (5% of the 0.5B's short answers on three fresh seeds). Only a clause that ends at
# a comma or colon is cut, so "In the context of forces, ..." keeps its words.
_SOURCE_NOUN = r"(?:sources?|context|passages?|documents?|texts?|information|excerpts?)"
_CITED = r"(?:\s*\[\d+\](?:\s*(?:,|and)\s*\[\d+\])*)?"
_ATTRIBUTION = re.compile(
    r"^(?:\[\d+\]\s*)*(?:"
    r"(?:according to|based (?:up)?on|as (?:stated|mentioned|described|shown|given) in|from|in)"
    r"\s+(?:the\s+)?"
    r"(?:(?:information|details|text)\s+(?:(?:provided|given|found)\s+)?(?:in|by)\s+(?:the\s+)?)?"
    rf"(?:(?:provided|given|above|available)\s+)?{_SOURCE_NOUN}"
    rf"(?:\s+(?:provided|given|above))?{_CITED}\s*[,:]"
    rf"|(?:the\s+)?{_SOURCE_NOUN}{_CITED}\s+(?:state|say|show|indicate|mention)s?(?:\s+that)?"
    r")\s*",
    re.IGNORECASE,
)


def without_attribution(answer: str) -> str:
    """`answer` without an opening clause that only says it comes from the sources."""
    return _ATTRIBUTION.sub("", answer.strip(), count=1)


def extracted_short_answer(answer: str, question: str) -> str:
    """The first run of the answer's words that the question does not already say: what a
    sentence answer adds to the question it restates ("The historic heart of Newcastle is the
    Grainger Town area" for "What is the historic heart of Newcastle?" gives "Grainger Town
    area"); "" when every content word is the question's. For when the model names no short
    answer of its own; extractive readers take the same view of a span (what is new)."""
    asked = frozenset().union(*(_asked_keys(w) for w in words(question)))

    def told(token: str) -> bool:
        found = words(token)
        return bool(found) and all(w in STOP_WORDS or _asked_keys(w) & asked for w in found)

    def empty(token: str) -> bool:
        return all(w in _END_WORDS for w in words(token))

    runs: list[list[str]] = [[]]
    for token in _CITATION.sub(" ", without_attribution(answer)).split():
        if told(token) and not empty(token):
            runs.append([])
            continue
        runs[-1].append(token)
        if _CLAUSE_END.search(token):
            runs.append([])
    for run in runs:
        while run and (told(run[0]) or empty(run[0])):
            run.pop(0)
        while run and (told(run[-1]) or empty(run[-1])):
            run.pop()
        if run:
            return " ".join(run[:MAX_WORDS]).strip(" ,;:.\"'()")
    return ""


# No word character, apostrophe or hyphen before / after: a match that is not inside a word
# ("lens" is not found in "lens-shaped").
_NOT_AFTER_WORD = r"(?<![\w'’\-])"
_NOT_BEFORE_WORD = r"(?![\w'’\-])"
# A word that goes on a name: a capital first letter ("River", "III", "McManus").
_NAME_WORD = re.compile(r"[A-Z][\w'’\-]*")
_NAME_WORDS_ADDED = 4
_SENTENCE_START = re.compile(r"(?:^|[.!?:]\s*)$")


def whole_name(short: str, answer: str) -> str:
    """`short` run on to the end of the capitalised name it stands at the start of in the
    cited `answer`: "Trout" in "The Trout River, a tributary" gives "Trout River". Small
    models name a thing by its first word; readers, and SQuAD's annotators, name it whole.
    Only capitalised words are added, up to the next punctuation, so a name never takes the
    verb after it; `short` itself where it ends in no capitalised word, is not found, or
    opens a sentence (there a capital says nothing: "Six Pro Bowl selections")."""
    text = _CITATION.sub(" ", answer).strip()
    found = re.search(rf"{_NOT_AFTER_WORD}{re.escape(short.strip())}{_NOT_BEFORE_WORD}", text, re.I)
    if (
        not short.strip()
        or found is None
        or not _NAME_WORD.match(found.group().split()[-1])
        or _SENTENCE_START.search(text[: found.start()])
        or not text[found.end() :].startswith(" ")  # punctuation ends the name
    ):
        return short
    added: list[str] = []
    for token in text[found.end() :].split(" ")[1:]:
        core = token.rstrip(".,;:!?)\"'’")
        if (
            len(added) == _NAME_WORDS_ADDED
            or not _NAME_WORD.fullmatch(core)
            or core.lower() in STOP_WORDS
            or found.group().count(" ") + len(added) + 1 >= MAX_WORDS
        ):
            break
        added.append(core)
        if core != token:  # punctuation ends the name
            break
    return " ".join([found.group(), *added]) if added else short


_MAGNITUDE = r"(?:hundred|thousand|million|billion|trillion)"


def whole_words(short: str, answer: str) -> str:
    """`short` run on to the end of the word, or the number, it stops inside of in the cited
    `answer`: "lens" in "lens-shaped" gives "lens-shaped", "43" in "43 million tons" gives
    "43 million" (a number without its magnitude is another number), and a phrase of more
    than PHRASE_WORDS words that stops inside its last word or number ("... in the host's
    cytopl", "... 0.39–1.1" in "0.39–1.18") gives it whole: the caps on a reply's tokens and a
    span's words cut there. `short` itself where the answer holds it whole first, where it is
    a number before a hyphen ("24" in "24-yard line"), or a short reply that only begins a
    longer word or number ("Trout" in "Troutbeck")."""
    text = _CITATION.sub(" ", answer)
    stripped = short.strip()
    if not stripped:
        return short
    said = _NOT_AFTER_WORD + re.escape(stripped)
    number = stripped[-1].isdigit()
    # "90" does not stand whole in "90,790", nor "1.1" in "1.18".
    ends = r"(?![.,]?\d)" if number else ""
    whole = re.search(said + ends + _NOT_BEFORE_WORD, text, re.I)
    if whole is None:
        # Only a phrase can have been stopped by a cap; a short reply inside a longer word or
        # number is what the model named ("Trout" in "Troutbeck", a stray "1" in "1.4").
        cut = len(stripped.split()) > PHRASE_WORDS
        found = None
        if not number:
            found = re.search(rf"{said}(?:-[\w'’]+)+\b", text, re.I)
            if found is None and cut:
                found = re.search(rf"{said}[\w'’]+(?:-[\w'’]+)*", text, re.I)
        elif cut:  # not on by a hyphen: "-yard" is the unit of the "24" asked for
            found = re.search(said + r"(?:[.,]?\d)+", text, re.I)
        return stripped + found.group()[len(stripped) :] if found else short
    magnitude = re.match(rf"\s+({_MAGNITUDE})\b", text[whole.end() :], re.I)
    if number and magnitude:
        return f"{stripped} {magnitude.group(1)}"
    return short


# Brackets a cut short answer left open are closed only this many words on.
_CLOSED_WITHIN = 4


def closed(short: str, answer: str) -> str:
    """`short` with a bracket it leaves open closed as the cited `answer` closes it, at most
    _CLOSED_WITHIN words on ("less than 9 °C (48 °F" gives "less than 9 °C (48 °F)"), else
    cut before the bracket: the caps on a reply's tokens and a span's words can stop inside
    one, and a reader shown "(48 °F" sees a broken answer."""
    stripped = short.strip()
    if stripped.count("(") <= stripped.count(")"):
        return short
    text = _CITATION.sub(" ", answer)
    found = re.search(re.escape(stripped) + r"([^().!?]*?\))", text, re.I)
    if found and len(found.group(1).split()) <= _CLOSED_WITHIN:
        return stripped + found.group(1)
    opened = stripped.rfind("(")
    before = stripped[:opened].rstrip(" ,;:")
    return before if words(before) else stripped[opened + 1 :].strip()


# A question that asks for a time or a quantity, whose answer is a number or a date: the
# expected answer type of classic QA, read from the question's words alone.
_ASKS_QUANTITY = re.compile(
    r"\b(?:when|how (?:many|much|long|old|far|often|large|big|high|tall|fast)"
    r"|(?:what|which) (?:year|date|day|month|century|decade|time|age|percentage|number|amount)"
    r"|percent(?:age)?)\b",
    re.IGNORECASE,
)
_MONTHS = frozenset(
    {
        *("january", "february", "march", "april", "may", "june", "july"),
        *("august", "september", "october", "november", "december"),
    }
)
# What joins the items of a list in running text: a comma, "and", "or", and an article.
_LIST_JOIN = r"(?:\s*,\s*(?:(?:and|or)\s+)?|\s+(?:and|or|and/or)\s+)(?:(?:the|a|an)\s+)?"


def _quantity(part: str) -> bool:
    """A number or a date ("83 yards", "15 February 1546", "27-30%"), not a name that holds
    a number ("Super Bowl 50")."""
    tokens = part.split()
    return any(c.isdigit() for c in part) and all(
        any(c.isdigit() for c in t) or not t[:1].isupper() or t.lower() in _MONTHS for t in tokens
    )


def listed_short_answer(named: str, answer: str, question: str) -> str:
    """`named` as the answer says it where the model named a list ("Eisleben, 15 February
    1546"). Small models list every salient item of the answer, its subject and its dates
    among them; the items kept are those the cited answer holds and the question does not
    already say, of the type the question asks for where the list has both: its numbers and
    dates for "when" and "how many", else its one other item. Items kept that the answer
    lists together are shown in its words ("Neil Shubin and Paul Sereno"). `named` itself
    where it is no list or nothing would be left."""
    parts = [p.strip(" ,;") for p in re.split(r",\s+", named)]  # not "1,600"
    if len(parts) < 2 or not all(parts):
        return named
    kept = [p for p in parts if grounded_in(p, answer) and says_more_than_question(p, question)]
    quantities = [p for p in kept if _quantity(p)]
    others = [p for p in kept if not _quantity(p)]
    if _ASKS_QUANTITY.search(question):
        kept = quantities or kept
    elif len(others) == 1:
        # One thing and its numbers ("Sanders, 83 yards"); a list of several things keeps
        # its numbers, which may be items ("flour, sugar, 2 eggs").
        kept = others
    if not kept:
        return named
    if len(kept) == 1:
        return kept[0]
    text = _CITATION.sub(" ", answer)
    pattern = _LIST_JOIN.join(re.escape(p) for p in kept)
    found = re.search(_NOT_AFTER_WORD + pattern + _NOT_BEFORE_WORD, text, re.IGNORECASE)
    return found.group() if found else ", ".join(kept)


def shown_short_answer(named: str, answer: str, question: str) -> str:
    """The short answer to show beside `answer`: what the model `named` where that says more
    than the question, a list cut to what was asked (`listed_short_answer`), else the
    answer's own words (`extracted_short_answer`), else `named`; a name either cut short is
    run on to its end (`whole_name`), and so is a word or a number (`whole_words`); a bracket
    left open is closed or cut (`closed`)."""
    if named and says_more_than_question(named, question):
        listed = listed_short_answer(named, answer, question)
        return closed(whole_name(whole_words(listed, answer), answer), answer)
    extracted = extracted_short_answer(answer, question)
    if not extracted:
        return named
    return closed(whole_name(whole_words(extracted, answer), answer), answer)


def shown_extracted(named: str, shown: str, question: str) -> bool:
    """Whether `shown_short_answer` showed words it extracted from the answer, not what the
    model `named` (which said nothing the question does not)."""
    return shown != named and not (named and says_more_than_question(named, question))


def grounded_in(short: str, answer: str) -> bool:
    """At least half of the short answer's content words stand in the cited answer."""
    every = words(short)
    content = [w for w in every if w not in STOP_WORDS] or every
    if not content:
        return False
    answer_words = set(words(answer))
    return sum(w in answer_words for w in content) * 2 >= len(content)


def _says_more(text: str, known: set[str]) -> bool:
    content = [w for w in words(text) if w not in STOP_WORDS]
    return any(w in _YES_NO or w not in known for w in content)


def says_more_than_question(text: str, question: str, known: frozenset[str] = frozenset()) -> bool:
    """Whether `text` says more than `question` (and the words `known`) already do. A question
    that offers alternatives ("Who was born first, Hemingway or Fitzgerald?") is answered by
    naming one of them, so there a reply made of the question's words answers when it picks
    (names content words, without "or" itself)."""
    asked = set(words(question))
    if _says_more(text, asked | known):
        return True
    said = words(text)
    return "or" in asked and any(w not in STOP_WORDS for w in said) and "or" not in said


def answers_question(
    short: str, question: str, answer: str = "", titles: tuple[str, ...] = ()
) -> bool:
    """False when the answer plainly answers nothing: its text (citations aside) is only the
    question's words and the sources' titles, or its short answer only repeats the question.
    An empty short answer (the model named none) decides nothing by itself: small models say
    "none" to answers that do answer, and the claim checks still apply."""
    titled = frozenset(words(" ".join(titles)))
    if answer and not says_more_than_question(_CITATION.sub(" ", answer), question, titled):
        return False
    return not short or says_more_than_question(short, question)


def short_answer(
    generator: Generator,
    prompts: PromptSet,
    context_block: str,
    question: str,
    idk: str,
    answer: str,
) -> str:
    """The short answer to `question` taken from `answer`, or "" when there is none.

    First the answer's own conversation is continued. Where that names nothing, or only the
    question's words (the 1.5B often names the question's subject: "Lady Gaga" for "What did
    Lady Gaga sing?"), the question is asked again in a few words straight from the sources
    (`direct_answer.txt`, greedy), and that reply is kept if it stands in the cited answer:
    the short answer never says what the explanation beside it does not."""
    params = GenerationParams(max_tokens=MAX_TOKENS, stop=("\n",))

    def grounded_reply(prompt: str) -> str:
        short = clean_short_answer(generator.generate(prompt, params).text, question)
        return short if short and grounded_in(short, answer) else ""

    first = grounded_reply(
        generator.render(prompts.short_answer_messages(context_block, question, idk, answer))
    )
    if first and says_more_than_question(first, question):
        return first
    # The sources' prefix is the answer prompt's: the KV cache holds it still.
    second = grounded_reply(
        generator.render(prompts.direct_answer_messages(context_block, question, idk))
    )
    return second if second and says_more_than_question(second, question) else first
