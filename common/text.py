"""Word helpers shared by entity linking (nlu/linking) and the dialogue (qa/): normalising a
message, whole-phrase matching, word matching that forgives a typo or a plural, and reading a
product's base name ("Dune (Paperback)" -> "dune")."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.lower()).strip()


def has_phrase(text: str, phrase: str) -> bool:
    phrase = phrase.strip().lower()
    if not phrase:
        return False
    return re.search(r"(?<![a-z0-9])" + re.escape(phrase) + r"(?![a-z0-9])", text) is not None


# -- words ----------------------------------------------------------------------------------------
# Words that never tell two products apart ("the one please", "I mean the ...").
FILLER = frozenset({
    "the", "a", "an", "one", "ones", "and", "for", "with", "in", "of", "to", "is", "it", "i", "me", "my", "please",
    "pls", "plz", "mean", "meant", "want", "like", "that", "this", "those", "these", "version", "thanks", "thank",
    "you", "ok", "okay", "yes", "yeah", "just", "would", "id", "i'd", "take", "go", "what", "about", "which",
})


_INNER_HYPHEN = re.compile(r"(?<=[a-z0-9])[-\u2010\u2011](?=[a-z0-9])")
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-case word tokens; a hyphen inside a word is dropped ("E-book" and "ebook" are one word)."""
    return _WORD.findall(_INNER_HYPHEN.sub("", (text or "").lower()))


def _edits(a: str, b: str, limit: int) -> int:
    """Levenshtein distance, giving up (limit + 1) once it exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


@functools.lru_cache(maxsize=65536)  # pure, and asked the same pairs turn after turn
def word_matches(said: str, word: str) -> bool:
    """Whether a word of a message names `word`: the same, a plural or a short prefix of it
    ("notebook" / "notebooks", "hardcov" / "hardcover"), or one typo away (two for long words)
    with the first letter right, as spelling tools assume ("hardcovr"; "book" is no "ebook")."""
    if said == word:
        return True
    if said.isdigit() or word.isdigit():
        return False
    short, long_ = sorted((said, word), key=len)
    if len(short) >= 4 and long_.startswith(short) and len(long_) - len(short) <= 2:
        return True
    limit = 2 if len(short) >= 8 else 1 if len(short) >= 4 else 0
    return limit > 0 and said[0] == word[0] and _edits(said, word, limit) <= limit


def covers(mention: list[str], name: list[str]) -> bool:
    """Every (non-filler) word of a mention is named by a word of `name`."""
    wanted = [w for w in mention if w not in FILLER]
    return bool(wanted) and all(any(word_matches(w, n) for n in name) for w in wanted)


def base_name(name: str) -> str:
    """A product name without its variant ("Dune (Paperback)", "Aurora X2, Black" -> "dune",
    "aurora x2") and without a leading article, as words."""
    head = re.sub(r"\s*\([^)]*\)\s*$", "", name or "").partition(", ")[0]
    tokens = words(head)
    while tokens and tokens[0] in ("the", "a", "an"):
        tokens = tokens[1:]
    return " ".join(tokens)


def named_exactly(mention: str, names: Sequence[str]) -> list[int]:
    """The positions of the names a mention names exactly ("dune" names "Dune (Paperback)" and
    "Dune (Hardcover)", not "Dune Messiah"): an exact name beats a partial one."""
    said = base_name(mention)
    return [i for i, n in enumerate(names) if said and (base_name(n) == said or " ".join(words(n)) == said)]
