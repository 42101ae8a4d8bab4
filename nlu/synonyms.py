"""Domain synonyms for training phrasings, drawn from WordNet and restricted to a shop's words.

Shoppers say "reimbursement", "restitution" or "compensation" where our phrasings say "refund",
and "call off" or "annul" where they say "cancel". `DOMAIN_WORDS` lists the words of this domain
with the WordNet senses that are meant (part of speech and sense numbers, so "order" never becomes
"decree"); `build_table` reads Debian's WordNet database (package `wordnet-base`, files
`/usr/share/wordnet/index.*` and `data.*`) and writes `nlu/data/synonyms.yaml`, which is
committed: training reads the table, so WordNet is needed only to regenerate it
(`./kgqa nlu synonyms`). `EXTRA` adds common shop words WordNet lacks and `BLOCKED` drops the
archaic or misleading ones it has.

`swap_synonym` makes one training variant: one domain word (or phrase) of a phrasing replaced by
one of its synonyms, keeping the case of the first letter. Slots (`{product}`) are never touched.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from common.errors import NLUError

WORDNET_DIR = Path("/usr/share/wordnet")
TABLE = Path(__file__).resolve().parent / "data" / "synonyms.yaml"

# word -> (part of speech, WordNet sense numbers meant, 1-based)
DOMAIN_WORDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "refund": ("n", (1,)), "reimburse": ("v", (1,)), "compensation": ("n", (1, 2)),
    "cancel": ("v", (1, 2)), "cancellation": ("n", (1, 2)), "fee": ("n", (1,)), "charge": ("n", (3,)),
    "penalty": ("n", (1, 2)), "buy": ("v", (1,)), "purchase": ("n", (1,)), "order": ("n", (5,)),
    "package": ("n", (1,)), "parcel": ("n", (1,)), "shipment": ("n", (1,)),     "ship": ("v", (1,)), "invoice": ("n", (1,)), "bill": ("n", (2,)),
    "complaint": ("n", (1, 4)), "complain": ("v", (1,)), "review": ("n", (2,)),
    "feedback": ("n", (1,)), "opinion": ("n", (1,)), "password": ("n", (1,)), "account": ("n", (1,)),
    "delete": ("v", (1,)), "remove": ("v", (1,)), "close": ("v", (1,)), "change": ("v", (1,)),
    "modify": ("v", (1,)), "edit": ("v", (2,)), "update": ("v", (1,)), "address": ("n", (2,)),
    "unsubscribe": ("v", (1,)), "newsletter": ("n", (1,)),
    "issue": ("n", (1,)), "help": ("n", (1,)), "assistance": ("n", (1,)),
    "need": ("v", (1,)), "want": ("v", (1,)), "get": ("v", (1,)),     "track": ("v", (1,)),
    "money": ("n", (1,)), "payment": ("n", (1,)), "pay": ("v", (1,)),
    "agent": ("n", (1,)), "person": ("n", (1,)), "representative": ("n", (1,)), "quickly": ("r", (1,)),
    "broken": ("a", (1,)), "damaged": ("a", (1,)), "create": ("v", (1,)), "register": ("v", (1,)),
    "lost": ("a", (1,)), "wrong": ("a", (1,)), "late": ("a", (1,)),
}
EXTRA: dict[str, list[str]] = {
    "refund": ["reimbursement", "restitution", "repayment", "money back", "rebate"],
    "cancel": ["call off", "revoke", "annul", "scrap", "withdraw"],
    "fee": ["charge", "penalty", "cost"],
    "buy": ["purchase", "acquire", "order", "get"],
    "order": ["purchase"],
    "package": ["parcel", "shipment", "delivery"],
    "invoice": ["bill", "receipt"],
    "complaint": ["claim", "grievance", "reclamation"],
    "review": ["feedback", "rating", "opinion"],
    "password": ["pin", "passcode", "login details"],
    "account": ["profile", "user account"],
    "delete": ["close", "remove", "get rid of", "deactivate"],
    "agent": ["human", "representative", "operator", "assistant"],
    "newsletter": ["mailing list", "marketing emails", "bulletin"],
    "need": ["require"],
    "help": ["assistance", "support"],
}
BLOCKED = frozenset({
    "tear", "tell off", "scold", "bawl out", "chew out", "call down", "have words", "lambaste", "remonstrate",
    "rebuke", "reprimand", "reproof", "dressing down", "lecture", "talking to", "berate", "castigate",
    "natural endowment", "endowment", "gift", "fix", "cut", "offset", "set off", "invalidate", "quash",
    "scrub", "strike down", "lift", "shipping", "cargo", "lading", "freight", "load", "loading",
    "payload", "bundle", "packet", "software package", "software system", "computer software",
    "practice", "prescribe", "dictate", "say", "enjoin", "order of magnitude", "rescind", "natural",
    "hold", "quit", "bag", "pocketbook", "purse", "bank note", "banknote", "bill of exchange",
    "measure", "poster", "posting", "placard", "notice", "card", "invoice", "account", "history",
    "chronicle", "story", "report", "describe", "business relationship", "accounting", "bill",
    "countersign", "parole", "watchword", "word", "word of honor", "money", "bring", "take",
    "draw", "fetch", "scram", "redress", "recompense", "remuneration", "damages", "amends",
    "indemnity", "indemnification", "restitution", "compensate", "do", "ailment", "complaint",
    "charge", "ill", "plaint", "kick", "kvetch", "sound off", "quetch", "plain", "ring", "ring up",
    "get in touch", "step", "tread", "trail", "cover", "traverse", "cut through", "cut across",
    "get over", "get across", "track down", "chase", "chase after", "dog", "go after", "give chase",
    "tail", "tag", "get after", "bear", "carry", "behave", "acquit", "deport", "conduct",
    "comport", "agentive role", "factor", "broker", "federal agent", "secret agent", "intelligence agent",
    "operative", "person", "individual", "someone", "somebody", "mortal", "soul", "delegate", "spokesperson",
    "interpreter", "voice", "example", "illustration", "instance", "congressman", "congresswoman",
    "orderliness", "persuasion", "review article", "critical review", "postulate", "involve", "ask",
    "call for", "demand", "necessitate", "scratch", "penalisation", "penalization", "punishment",
    "take away", "sentiment", "newssheet", "get",
})

def _index(pos: str, root: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    with (root / f"index.{ {'n': 'noun', 'v': 'verb', 'a': 'adj', 'r': 'adv'}[pos] }").open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(" "):
                continue
            parts = line.split()
            lemma, n_synsets, n_ptrs = parts[0], int(parts[2]), int(parts[3])
            offsets = parts[6 + n_ptrs:6 + n_ptrs + n_synsets]
            out[lemma] = [int(o) for o in offsets]
    return out


def _lemmas(pos: str, offset: int, root: Path) -> list[str]:
    name = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}[pos]
    with (root / f"data.{name}").open("rb") as fh:
        fh.seek(offset)
        parts = fh.readline().decode("utf-8").split()
    n_words = int(parts[3], 16)
    return [re.sub(r"\(.*\)$", "", parts[4 + 2 * i]).replace("_", " ").lower() for i in range(n_words)]


def build_table(root: Path = WORDNET_DIR) -> dict[str, list[str]]:
    """word -> synonyms (WordNet senses of DOMAIN_WORDS, plus EXTRA, minus BLOCKED), sorted."""
    if not (root / "index.noun").is_file():
        raise NLUError(f"no WordNet database in {root}: install Debian's wordnet-base (apt-get install wordnet-base)")
    indexes = {pos: _index(pos, root) for pos in "nvar"}
    table: dict[str, list[str]] = {}
    for word, (pos, senses) in DOMAIN_WORDS.items():
        offsets = indexes[pos].get(word, [])
        found: set[str] = set()
        for sense in senses:
            if sense <= len(offsets):
                found.update(_lemmas(pos, offsets[sense - 1], root))
        found.update(EXTRA.get(word, []))
        found.discard(word)
        keep = sorted(s for s in found if s not in BLOCKED and len(s.split()) <= 3 and s.isascii())
        if keep:
            table[word] = keep
    for word, extra in EXTRA.items():
        table.setdefault(word, sorted(set(extra) - {word}))
    return dict(sorted(table.items()))


def write_table(table: dict[str, list[str]], path: Path = TABLE) -> Path:
    header = ("# Generated by `./kgqa nlu synonyms` from WordNet 3.0 (Princeton University, WordNet licence)\n"
              "# restricted to nlu/synonyms.py DOMAIN_WORDS senses; edit that file, not this one.\n")
    path.write_text(header + yaml.safe_dump(table, sort_keys=True, allow_unicode=False), encoding="utf-8")
    return path


def load_table(path: Path = TABLE) -> dict[str, list[str]]:
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(k): [str(v) for v in vs] for k, vs in data.items()}


def swap_synonym(phrasing: str, table: dict[str, list[str]], rng: random.Random) -> str | None:
    """`phrasing` with one domain word replaced by a synonym, or None when it has none."""
    spots = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[A-Za-z]+", phrasing)
             if m.group(0).lower() in table and not _in_slot(phrasing, m.start())]
    if not spots:
        return None
    start, end, word = rng.choice(spots)
    synonym = rng.choice(table[word.lower()])
    if word[0].isupper():
        synonym = synonym[0].upper() + synonym[1:]
    return phrasing[:start] + synonym + phrasing[end:]


def _in_slot(text: str, pos: int) -> bool:
    return text.rfind("{", 0, pos) > text.rfind("}", 0, pos)


def words_in(texts: Iterable[str], table: dict[str, list[str]]) -> int:
    """How many of `texts` have at least one word the table can swap (for reports)."""
    return sum(1 for t in texts if any(w.lower() in table for w in re.findall(r"[A-Za-z]+", t)))
