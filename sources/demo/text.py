"""Text of the demo corpus: English prose in several registers, prose in five other languages,
source code in eight languages and LaTeX papers.

Everything is composed here from templates and word lists written for this project: the package data
files `en.txt`, `fr.txt`, `de.txt`, `es.txt`, `ru.txt`, `zh.txt` (format described at the top of
`en.txt`; the slots a template may use are the keys of `EnglishWriter._slots` and
`ForeignWriter._slots`) and `code.txt` (source-code snippets). Every generator draws from a
caller-supplied `random.Random`, so one seed always gives the same text.

The English generator is built so that its documents pass the quality filters the pipeline applies
(Gopher repetition and quality rules, C4 line rules): a sentence is an optional opener, a core
template, and an optional tail clause; core templates are dealt from a shuffled deck per document so
none repeats before all were used, and every slot draws from lists of hundreds of words.
"""

from __future__ import annotations

import functools
import random
import re
import string
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

# Sections whose entries are whole lines (templates); all other sections are whitespace-separated words.
LINE_SECTIONS = frozenset({
    "templates", "clauses", "tails", "time", "place_phrases", "future", "openers", "titles", "dialogue",
    "book_titles",
})
FOREIGN_LANGUAGES = ("fr", "de", "es", "ru", "zh")

_SLOT = re.compile(r"\{([A-Za-z0-9_]+)\}")
_YEAR_MARK = "\x01"  # placeholder for years, filled in ascending order once a sentence is complete


@functools.cache
def load_wordfile(name: str) -> dict[str, tuple[str, ...]]:
    """Parse one package data file (`en`, `fr`, ...) into {section: entries}."""
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
        elif current.split(".")[0] in LINE_SECTIONS:
            sections[current].append(line)
        else:
            sections[current].extend(word.replace("_", " ") for word in line.split())
    return {name: tuple(entries) for name, entries in sections.items()}


def compile_template(template: str) -> tuple[str, ...]:
    """Split a template into literal text (even positions) and slot names (odd positions)."""
    return tuple(_SLOT.split(template))


# --- English morphology -------------------------------------------------------------------------

@dataclass(frozen=True)
class Noun:
    sg: str
    pl: str


@dataclass(frozen=True)
class Verb:
    base: str
    s: str
    past: str
    pp: str
    ing: str


def _plural(word: str) -> str:
    head, _, last = word.rpartition(" ")
    if last.endswith(("s", "sh", "ch", "x", "z")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def parse_noun(entry: str) -> Noun:
    if ":" in entry:
        sg, pl = entry.split(":")
        return Noun(sg, pl)
    return Noun(entry, _plural(entry))


def parse_verb(entry: str) -> Verb:
    base, *forms = entry.split(":")
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        third = base + "es"
    elif base.endswith("y") and base[-2] not in "aeiou":
        third = base[:-1] + "ies"
    else:
        third = base + "s"
    if forms:
        past = forms[0]
    elif base.endswith("e"):
        past = base + "d"
    elif base.endswith("y") and base[-2] not in "aeiou":
        past = base[:-1] + "ied"
    else:
        past = base + "ed"
    pp = forms[1] if len(forms) > 1 else past
    if len(forms) > 2:
        ing = forms[2]
    elif past == base + base[-1] + "ed":  # plan -> planned -> planning
        ing = base + base[-1] + "ing"
    elif base.endswith("e") and not base.endswith(("ee", "ye", "oe")):
        ing = base[:-1] + "ing"
    else:
        ing = base + "ing"
    return Verb(base, third, past, pp, ing)


_CONSONANT_SOUND = ("uni", "use", "usu", "uti", "eu", "one", "ure")
_VOWEL_SOUND = ("hour", "honest", "honour", "heir")


def _needs_an(word: str) -> bool:
    lower = word.lower()
    if lower.startswith(_VOWEL_SOUND):
        return True
    return lower[:1] in "aeiou" and not lower.startswith(_CONSONANT_SOUND)


_ARTICLE = re.compile(r"\b([Aa]n?) ([A-Za-z][\w-]*)")


def fix_articles(text: str) -> str:
    """Choose `a` or `an` by the sound of the following word."""
    def choose(match: re.Match) -> str:
        article, word = match.groups()
        wanted = "an" if _needs_an(word) else "a"
        if article[0] == "A":
            wanted = wanted.capitalize()
        return f"{wanted} {word}"
    return _ARTICLE.sub(choose, text)


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def title_case(text: str) -> str:
    small = {"a", "an", "the", "of", "in", "on", "and", "for", "to", "at", "with", "from", "by"}
    words = text.split(" ")
    return " ".join(
        word if (i and word in small) or word[:1].isupper() else capitalise(word)
        for i, word in enumerate(words)
    )


# --- the English lexicon --------------------------------------------------------------------------

class Lexicon:
    """The English word lists, parsed once (nouns and verbs with all their forms)."""

    def __init__(self) -> None:
        words = load_wordfile("en")
        self.words = words
        self.topics: tuple[str, ...] = words["topics"]
        self.nouns = {t: tuple(parse_noun(e) for e in words[f"nouns.{t}"]) for t in self.topics}
        self.all_nouns = tuple(n for t in self.topics for n in self.nouns[t])
        self.formal_nouns = tuple(parse_noun(e) for e in words["nouns.formal"])
        self.home_nouns = tuple(parse_noun(e) for e in words["nouns.home"])
        self.math_nouns = tuple(parse_noun(e) for e in words["nouns.math"])
        self.adjectives = {t: words[f"adjectives.{t}"] for t in self.topics}
        self.general_adjectives = words["adjectives.general"]
        self.math_adjectives = words["adjectives.math"]
        self.verbs = {t: tuple(parse_verb(e) for e in words[f"verbs.{t}"]) for t in self.topics}
        self.general_verbs = tuple(parse_verb(e) for e in dict.fromkeys(words["verbs.general"]))
        self.intransitive = tuple(parse_verb(e) for e in words["verbs.intransitive"])
        self.math_verbs = tuple(parse_verb(e) for e in words["verbs.math"])
        self.templates = {name: tuple(compile_template(t) for t in entries)
                          for name, entries in words.items() if name.split(".")[0] in LINE_SECTIONS}

    def counts(self) -> dict[str, int]:
        """Distinct nouns, verbs, adjectives and sentence templates (documented minimums in the tests)."""
        nouns = {n.sg for n in (*self.all_nouns, *self.formal_nouns, *self.home_nouns, *self.math_nouns)}
        verbs = {v.base for group in (*self.verbs.values(), self.general_verbs, self.intransitive,
                                      self.math_verbs) for v in group}
        adjectives = {a for group in (*self.adjectives.values(), self.general_adjectives,
                                      self.math_adjectives) for a in group}
        sentence_templates = sum(len(v) for k, v in self.templates.items() if k.startswith("templates"))
        return {"nouns": len(nouns), "verbs": len(verbs), "adjectives": len(adjectives),
                "sentence_templates": sentence_templates}


@functools.cache
def lexicon() -> Lexicon:
    return Lexicon()


@dataclass(frozen=True)
class Character:
    first: str
    last: str
    female: bool

    @property
    def pronoun(self) -> str:
        return "she" if self.female else "he"

    @property
    def possessive(self) -> str:
        return "her" if self.female else "his"


_SG_DETERMINERS = ("the", "a", "this", "that", "its", "their", "our", "each", "every", "another", "LAST")
_SG_WEIGHTS = (45, 20, 6, 3, 5, 6, 3, 3, 2, 3, 4)
_PL_DETERMINERS = ("the", "many", "some", "several", "these", "those", "most", "their", "our", "a few",
                   "NUMW", "")
_PL_WEIGHTS = (35, 8, 8, 7, 5, 3, 4, 6, 3, 5, 6, 10)

# Registers: which core templates a sentence draws from (with weights) and how often it gets an
# opener or a tail clause.
_REGISTERS = {
    "neutral": ((("templates.neutral", 1.0),), ("openers",), 0.3, 0.35),
    "formal": ((("templates.formal", 0.55), ("templates.neutral", 0.45)), ("openers.formal", "openers"),
               0.35, 0.3),
    "casual": ((("templates.casual", 0.5), ("templates.neutral", 0.5)), ("openers.casual", "openers"),
               0.3, 0.3),
    "narrative": ((("templates.narrative", 0.85), ("dialogue", 0.15)), (), 0.0, 0.0),
    "question": ((("templates.question", 1.0),), (), 0.0, 0.0),
    "math": ((("templates.math", 1.0),), (), 0.0, 0.0),
}


class EnglishWriter:
    """Generates English sentences, paragraphs and titles on one topic in one register.

    `key` is the noun a document is about (it recurs, as in real text); `cast` gives the characters of
    a narrative; `extra` adds slot providers (the LaTeX writer supplies MATH and CITE).
    """

    def __init__(self, rng: random.Random, topic: str | None = None, register: str = "neutral",
                 key: Noun | None = None, cast: tuple[Character, ...] = (),
                 extra: dict[str, Callable[[], str]] | None = None):
        self.lex = lexicon()
        self.rng = rng
        self.topic = topic or rng.choice(self.lex.topics)
        self.register = register
        self.key = key or rng.choice(self.lex.nouns[self.topic])
        self.cast = cast
        self._focus: Character | None = cast[0] if cast else None
        self._last_char: Character | None = None
        self._decks: dict[str, list] = {}
        words, lex = self.lex.words, self.lex
        self._connectives = {
            "openers": words["connectives"],
            "openers.formal": words["connectives.formal"],
            "openers.casual": words["connectives.casual"],
        }
        self._phrase_sections = {"TIME": "time", "LOC": "place_phrases", "FUT": "future", "CL": "clauses"}
        self._slots: dict[str, Callable[[], str]] = {
            "N": lambda: self._noun().sg, "Ns": lambda: self._noun().pl,
            "KEY": lambda: self.key.sg, "KEYs": lambda: self.key.pl,
            "A": self._adjective, "ADV": lambda: rng.choice(words["adverbs"]),
            "ADVF": lambda: rng.choice(words["adverbs.formal"]),
            "V": lambda: self._verb().base, "Vs": lambda: self._verb().s, "Vd": lambda: self._verb().past,
            "Vn": lambda: self._verb().pp, "Vg": lambda: self._verb().ing,
            "I": lambda: rng.choice(self.lex.intransitive).base,
            "Is": lambda: rng.choice(self.lex.intransitive).s,
            "Id": lambda: rng.choice(self.lex.intransitive).past,
            "Ig": lambda: rng.choice(self.lex.intransitive).ing,
            "NP": self._np, "NPs": self._np_plural,
            "EN": lambda: rng.choice(self.lex.formal_nouns).sg,
            "PERSON": self.person, "FIRST": lambda: rng.choice(self._first_names()),
            "LAST": lambda: rng.choice(words["last_names"]), "PLACE": lambda: rng.choice(words["places"]),
            "COUNTRY": lambda: rng.choice(words["countries"]), "LANG": lambda: rng.choice(words["languages"]),
            "YEAR": lambda: _YEAR_MARK, "FUTYEAR": lambda: str(rng.randint(2026, 2040)),
            "DECADE": lambda: f"{rng.randint(182, 201)}0s", "CENTURY": lambda: rng.choice(words["centuries"]),
            "NUM": lambda: str(rng.choice((rng.randint(2, 12), rng.randint(12, 95)))),
            "NUMW": lambda: rng.choice(words["number_words"]),
            "BIGNUM": lambda: f"{rng.randint(1, 950):,}{rng.choice(('', ',000'))}".lstrip(","),
            "PCT": lambda: f"{rng.randint(3, 88)} percent", "ORD": lambda: rng.choice(words["ordinals"]),
            "MONTH": lambda: rng.choice(words["months"]), "DAY": lambda: rng.choice(words["days"]),
            "SEASON": lambda: rng.choice(words["seasons"]), "DIR": lambda: rng.choice(words["directions"]),
            "FAMILY": lambda: rng.choice(words["family"]), "TOD": lambda: rng.choice(words["times_of_day"]),
            "STREET": lambda: rng.choice(words["street_words"]),
            "CONN": self._connective,
            "CHAR": self._character, "CHAR_FULL": self._character_full,
            "PRON": lambda: self._speaker().pronoun, "POSS": lambda: self._speaker().possessive,
            "HN": lambda: self._home_noun().sg, "HNP": self._home_np, "HNPs": self._home_np_plural,
            "MOTION": lambda: rng.choice(words["verbs.motion"]),
            "SAY": lambda: rng.choice(words["verbs.say"]),
            "MN": lambda: rng.choice(lex.math_nouns).sg, "MNs": lambda: rng.choice(lex.math_nouns).pl,
            "MA": lambda: rng.choice(lex.math_adjectives),
            "MA_A": lambda: "a " + rng.choice(lex.math_adjectives),
            "MV": lambda: rng.choice(lex.math_verbs).base, "MVs": lambda: rng.choice(lex.math_verbs).s,
            "MVd": lambda: rng.choice(lex.math_verbs).past, "MVn": lambda: rng.choice(lex.math_verbs).pp,
        }
        if extra:
            self._slots.update(extra)
        self._current_opener_kind = "openers"

    # --- vocabulary draws ---
    def _first_names(self) -> tuple[str, ...]:
        words = self.lex.words
        return words["first_names.f"] + words["first_names.m"]

    def person(self) -> str:
        return f"{self.rng.choice(self._first_names())} {self.rng.choice(self.lex.words['last_names'])}"

    def _noun(self) -> Noun:
        if self.rng.random() < 0.8:
            return self.rng.choice(self.lex.nouns[self.topic])
        return self.rng.choice(self.lex.all_nouns)

    def _adjective(self) -> str:
        if self.rng.random() < 0.45:
            return self.rng.choice(self.lex.adjectives[self.topic])
        return self.rng.choice(self.lex.general_adjectives)

    def _verb(self) -> Verb:
        if self.rng.random() < 0.3:
            return self.rng.choice(self.lex.verbs[self.topic])
        return self.rng.choice(self.lex.general_verbs)

    def _connective(self) -> str:
        return self.rng.choice(self._connectives.get(self._current_opener_kind, self._connectives["openers"]))

    def _determiner(self, plural: bool) -> str:
        if plural:
            det = self.rng.choices(_PL_DETERMINERS, _PL_WEIGHTS)[0]
            return self.rng.choice(self.lex.words["number_words"]) if det == "NUMW" else det
        det = self.rng.choices(_SG_DETERMINERS, _SG_WEIGHTS)[0]
        return self.rng.choice(self.lex.words["last_names"]) + "'s" if det == "LAST" else det

    def _np(self) -> str:
        noun = self.key if self.rng.random() < 0.15 else self._noun()
        adjective = self._adjective() + " " if self.rng.random() < 0.4 else ""
        return f"{self._determiner(False)} {adjective}{noun.sg}"

    def _np_plural(self) -> str:
        noun = self.key if self.rng.random() < 0.15 else self._noun()
        adjective = self._adjective() + " " if self.rng.random() < 0.45 else ""
        return f"{self._determiner(True)} {adjective}{noun.pl}".lstrip()

    def _home_noun(self) -> Noun:
        if self.rng.random() < 0.7:
            return self.rng.choice(self.lex.home_nouns)
        return self.rng.choice(self.lex.nouns[self.rng.choice(("nature", "architecture", "travel"))])

    def _home_np(self) -> str:
        adjective = self._adjective() + " " if self.rng.random() < 0.4 else ""
        det = self.rng.choice(("the", "the", "the", "a", "a", "her", "his", "their", "an old"))
        return f"{det} {adjective}{self._home_noun().sg}"

    def _home_np_plural(self) -> str:
        adjective = self._adjective() + " " if self.rng.random() < 0.4 else ""
        det = self.rng.choice(("the", "the", "some", "many", "a few", "all the"))
        return f"{det} {adjective}{self._home_noun().pl}"

    def _character(self) -> str:
        if not self.cast:
            return self.rng.choice(self._first_names())
        chosen = self._focus if self.rng.random() < 0.6 else self.rng.choice(self.cast)
        self._last_char = chosen
        return chosen.first

    def _character_full(self) -> str:
        chosen = self._speaker()
        return f"{chosen.first} {chosen.last}"

    def _speaker(self) -> Character:
        who = self._last_char or self._focus
        if who is None:
            who = Character(self.rng.choice(self._first_names()), "", self.rng.random() < 0.5)
            self._focus = who
        return who

    # --- composition ---
    def _deal(self, section: str) -> tuple[str, ...]:
        deck = self._decks.get(section)
        if not deck:
            deck = list(self.lex.templates[section])
            self.rng.shuffle(deck)
            self._decks[section] = deck
        return deck.pop()

    def _expand(self, parts: tuple[str, ...], out: list[str]) -> None:
        for i, part in enumerate(parts):
            if i % 2 == 0:
                if part:
                    out.append(part)
            elif part in self._phrase_sections:
                self._expand(self.rng.choice(self.lex.templates[self._phrase_sections[part]]), out)
            else:
                out.append(self._slots[part]())

    def _finish(self, out: list[str]) -> str:
        text = "".join(out)
        if _YEAR_MARK in text:
            pieces = text.split(_YEAR_MARK)
            years = sorted(self.rng.randint(1820, 2023) for _ in range(len(pieces) - 1))
            text = "".join(p + (str(years[i]) if i < len(years) else "") for i, p in enumerate(pieces))
        return capitalise(fix_articles(text))

    def render(self, template: str) -> str:
        """Fill one template string (used for titles and one-off phrases)."""
        out: list[str] = []
        self._expand(compile_template(template), out)
        return self._finish(out)

    def sentence(self) -> str:
        cores, opener_kinds, p_opener, p_tail = _REGISTERS[self.register]
        r = self.rng.random()
        section = cores[-1][0]
        for name, weight in cores:
            if r < weight:
                section = name
                break
            r -= weight
        self._last_char = None
        if section == "dialogue":
            return self._dialogue()
        core = self._deal(section)
        out: list[str] = []
        if core[-1].endswith("?"):
            self._expand(core, out)
            return self._finish(out)
        if opener_kinds and self.rng.random() < p_opener:
            kind = self.rng.choice(opener_kinds)
            self._current_opener_kind = kind
            self._expand(self.rng.choice(self.lex.templates[kind]), out)
            out.append(" ")
        self._expand(core, out)
        if self.rng.random() < p_tail:
            tail = self.rng.choice(self.lex.templates["tails"])
            if not tail[0].startswith(","):
                out.append(" ")
            self._expand(tail, out)
        out.append(".")
        return self._finish(out)

    def _dialogue(self) -> str:
        out: list[str] = []
        self._expand(self._deal("dialogue"), out)
        line = capitalise(fix_articles("".join(out)))
        speaker = self._character()
        question = line.lower().startswith(("where", "do you", "tell me"))
        mark = "?" if question and not line.lower().startswith("tell") else ","
        verb = self.rng.choice(("said", "asked", "replied", "whispered", "answered")) if mark == "?" else \
            self.rng.choice(("said", "replied", "murmured", "declared", "answered"))
        return f"\u201c{line}{mark}\u201d {verb} {speaker}."

    def paragraph(self, sentences: int) -> str:
        if self.cast and self.rng.random() < 0.5:
            self._focus = self.rng.choice(self.cast)
        return " ".join(self.sentence() for _ in range(sentences))

    def paragraphs(self, count: int, min_sentences: int = 3, max_sentences: int = 7) -> list[str]:
        return [self.paragraph(self.rng.randint(min_sentences, max_sentences)) for _ in range(count)]

    def title(self, formal: bool = False) -> str:
        section = "titles.formal" if formal else "titles"
        out: list[str] = []
        self._expand(self.rng.choice(self.lex.templates[section]), out)
        return title_case(self._finish(out))


# --- other languages --------------------------------------------------------------------------------

_FRENCH_ELISION = re.compile(r"\b([dDnN]e|[qQ]ue|[jJ]e) ([aeiouyéèêâîôûAEIOUYÉÈÊÂÎÔÛ])")


class ForeignWriter:
    """Prose in French, German, Spanish, Russian or Chinese from that language's templates."""

    def __init__(self, rng: random.Random, lang: str):
        if lang not in FOREIGN_LANGUAGES:
            raise ValueError(f"unsupported language {lang!r}")
        self.rng = rng
        self.lang = lang
        self.words = load_wordfile(lang)
        self._templates = [compile_template(t) for t in self.words["templates"]]
        self._deck: list[tuple[str, ...]] = []
        pick = rng.choice
        w = self.words
        self._slots: dict[str, Callable[[], str]] = {
            "S": lambda: pick(w["subjects"]), "O": lambda: pick(w["objects"]), "V": lambda: pick(w["verbs"]),
            "ADJ": lambda: pick(w.get("adjectives", ("",))), "INF": lambda: pick(w.get("infinitives", ("",))),
            "PRED": lambda: pick(w.get("predicates", ("",))), "NAME": lambda: pick(w["names"]),
            "P": lambda: pick(w["places"]), "PLACE": lambda: pick(w["places"]),
            "T": lambda: pick(w["times"]).replace("{YEAR}", str(rng.randint(1990, 2023))),
            "YEAR": lambda: str(rng.randint(1990, 2023)),
        }

    def _fill(self, parts: tuple[str, ...]) -> str:
        text = "".join(part if i % 2 == 0 else self._slots[part]() for i, part in enumerate(parts))
        if self.lang == "fr":
            text = _FRENCH_ELISION.sub(lambda m: m.group(1)[0] + "'" + m.group(2), text)
        return capitalise(text)

    def sentence(self) -> str:
        if not self._deck:
            self._deck = list(self._templates)
            self.rng.shuffle(self._deck)
        return self._fill(self._deck.pop())

    def paragraph(self, sentences: int) -> str:
        joiner = "" if self.lang == "zh" else " "
        return joiner.join(self.sentence() for _ in range(sentences))

    def paragraphs(self, count: int, min_sentences: int = 3, max_sentences: int = 6) -> list[str]:
        return [self.paragraph(self.rng.randint(min_sentences, max_sentences)) for _ in range(count)]

    def title(self) -> str:
        return self._fill(compile_template(self.rng.choice(self.words["titles"])))


# --- low-quality text for the planted pages ---------------------------------------------------------

_SPAM_PRODUCTS = ("watches", "sunglasses", "phone cases", "vitamins", "sneakers", "handbags", "printer ink",
                  "car insurance", "hotel deals", "web hosting", "garden furniture", "headphones")


def spam_lines(rng: random.Random) -> list[str]:
    """Keyword-stuffed lines, each repeated many times (what repetition filters exist to catch)."""
    product = rng.choice(_SPAM_PRODUCTS)
    pool = [
        f"Buy cheap {product} online at the best price.",
        f"Click here for cheap {product} with free shipping!",
        f"Best price {product}, buy now and save {rng.randint(30, 90)} percent!",
        f"Cheap {product} cheap {product} best {product} deals today.",
        f"Order {product} now, best price guaranteed, click here.",
        f"Discount {product} sale, lowest price, buy cheap {product} here.",
    ]
    chosen = rng.sample(pool, 3)
    return [chosen[i % 3] for i in range(rng.randint(18, 30))]


def gibberish_paragraphs(rng: random.Random, count: int) -> list[str]:
    """Random letter strings arranged as sentences."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    paragraphs = []
    for _ in range(count):
        sentences = []
        for _ in range(rng.randint(3, 6)):
            words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 11)))
                     for _ in range(rng.randint(8, 18))]
            sentences.append(capitalise(" ".join(words)) + ".")
        paragraphs.append(" ".join(sentences))
    return paragraphs


# --- source code -------------------------------------------------------------------------------------

_CODE_ADJECTIVES = ("empty", "stale", "invalid", "expired", "cached", "pending", "duplicate", "missing",
                    "large", "closed", "active", "partial", "sorted", "unknown")
_COMMENTS = (
    "Return the {noun} for the given {noun2}.",
    "Skip {nouns} that are already {adj}.",
    "Keep the {nouns} sorted so lookups stay cheap.",
    "The {noun2} may be {adj} here, so check it first.",
    "Collect every {noun} that belongs to this {noun2}.",
    "Retry a few times because the {noun2} can be {adj}.",
    "Convert the raw {noun} into a {noun2} record.",
    "Count how many {nouns} each {noun2} has.",
    "Nothing to do when the {noun} list is {adj}.",
    "Merge the {adj} {nouns} into one {noun2}.",
    "Fail early if the {noun} is {adj}.",
    "Write the {nouns} back in the same order.",
)


@functools.cache
def load_snippets(name: str) -> dict[str, tuple[str, ...]]:
    """Parse a snippet file (`code.txt`): {section: snippets}, indentation kept (format in the file)."""
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current, lines = "", []

    def flush() -> None:
        snippet = "\n".join(lines).strip("\n")
        if current and snippet:
            sections.setdefault(current, []).append(snippet)
        lines.clear()

    for line in text.splitlines():
        if re.fullmatch(r"\[[a-z]+\.[a-z]+\]", line):
            flush()
            current = line[1:-1]
        elif line == "---":
            flush()
        elif current:
            lines.append(line)
    flush()
    return {section: tuple(snippets) for section, snippets in sections.items()}


class CodeWriter:
    """Plausible source files in Python, JavaScript, C, Go, Rust, Java, shell and Markdown.

    A file is a skeleton from `code.txt` filled with 2-5 functions; every function gets fresh
    identifiers made of code verbs and nouns, and comments from a small set of phrases.
    """

    LANGUAGES = ("Python", "JavaScript", "C", "Go", "Rust", "Java", "Shell", "Markdown")
    _METHOD_LANGUAGES = {"Rust", "Java"}  # functions live inside a type: indented, in $METHODS

    def __init__(self, rng: random.Random):
        self.rng = rng
        words = load_wordfile("en")
        self.verbs = words["code.verbs"]
        self.nouns = words["code.nouns"]
        self.snippets = load_snippets("code")

    def noun(self) -> str:
        return self.rng.choice(self.nouns)

    def verb(self) -> str:
        return self.rng.choice(self.verbs)

    def snake(self) -> str:
        return f"{self.verb()}_{self.noun()}"

    def camel(self) -> str:
        return self.verb() + self.noun().capitalize()

    def pascal(self) -> str:
        suffix = self.rng.choice(("Store", "Index", "Parser", "Builder", "Queue", "Registry", "Cache"))
        return self.noun().capitalize() + suffix

    def comment(self) -> str:
        noun, noun2 = self.rng.sample(self.nouns, 2)
        adjective = self.rng.choice(_CODE_ADJECTIVES)
        return self.rng.choice(_COMMENTS).format(noun=noun, nouns=_plural(noun), noun2=noun2, adj=adjective)

    def prose(self, sentences: int = 2) -> str:
        return EnglishWriter(self.rng, topic="technology").paragraph(sentences)

    def _name(self, language: str) -> str:
        if language in ("JavaScript", "Java"):
            return self.camel()
        if language == "Go":
            return self.verb().capitalize() + self.noun().capitalize()
        return self.snake()

    def file(self, language: str) -> str:
        if language == "Markdown":
            return self._markdown()
        key = language.lower()
        r = self.rng
        item, field = self.noun(), self.noun()
        values = {
            "DOC": self.comment() if language != "Python" else self.prose(1), "COMMENT": self.comment(),
            "NUM": str(r.randint(2, 9)), "NUM2": str(r.randint(10, 512)), "UPPER": self.noun().upper(),
            "TYPE": self.pascal(), "PKG": self.noun(), "STRUCT": item, "SFIELD": field,
            "STORE": _plural(field),
            "ITEM": item, "ITEMS": _plural(item),
            "IMPORTS": "".join(f"{line}\n" for line in sorted(r.sample(("import logging", "import os",
                                                                      "import re"), r.randint(0, 2)))),
        }
        skeleton = r.choice(self.snippets[f"{key}.file"])
        methods = language in self._METHOD_LANGUAGES or "$METHODS" in skeleton
        names, functions = [], []
        for _ in range(r.randint(2, 5)):
            name, item = self._name(language), self.noun()
            names.append(name)
            function_values = {**values, "NAME": name, "ITEM": item, "ITEMS": _plural(item),
                               "FIELD": self.noun(), "COMMENT": self.comment(), "COMMENT2": self.comment(),
                               "LIMIT": str(r.randint(1, 100)), "SELF": "self, " if methods else ""}
            function_values["FIELDS"] = _plural(function_values["FIELD"])
            template = string.Template(r.choice(self.snippets[f"{key}.function"]))
            body = template.safe_substitute(function_values)
            functions.append(textwrap.indent(body, "    ") if methods else body)
        separator = "\n\n\n" if language == "Python" and not methods else "\n\n"
        values.update(FUNCTIONS=separator.join(functions), METHODS="\n\n".join(functions),
                      EXPORTS=", ".join(names), FIRST=names[0])
        text = string.Template(skeleton).safe_substitute(values)
        return re.sub(r"\n{4,}", "\n\n\n", text).rstrip() + "\n"

    def _markdown(self) -> str:
        r = self.rng
        project = f"{self.noun()}-{self.verb()}er"
        install = f"pip install {project}" if r.random() < 0.5 else f"npm install {project}"
        lines = [f"# {project}", "", self.prose(3), "", "## Installation", "", "```sh", install, "```", "",
                 "## Usage", "", self.prose(2), ""]
        lines += [f"- {self.comment()}" for _ in range(r.randint(2, 5))]
        lines += ["", "## Contributing", "", self.prose(2), ""]
        return "\n".join(lines)


# --- LaTeX papers -------------------------------------------------------------------------------------

_MACROS = r"""% user macros
\newcommand{\R}{\mathbb{R}}
\newcommand{\N}{\mathbb{N}}
\newcommand{\E}{\mathbb{E}}
\newcommand{\norm}[1]{\left\|#1\right\|}
\newcommand{\inner}[2]{\langle #1, #2 \rangle}
\def\eps{\varepsilon}
\def\dd{\mathrm{d}}
"""


class PaperWriter:
    """One LaTeX paper: preamble with user macros, abstract, sections of mathematical prose, equations,
    a figure, comments, and a bibliography (inline or as `refs.bib`)."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.cite_keys = [f"{rng.choice(load_wordfile('en')['last_names']).lower()}{rng.randint(1995, 2023)}"
                          for _ in range(rng.randint(4, 9))]
        self.writer = EnglishWriter(rng, topic="science", register="math",
                                    extra={"MATH": self.inline_math, "CITE": self.cite})
        # Every paper defines the macros its formulas use, in its own order and style.
        macros = _MACROS.strip().split("\n")[1:]
        rng.shuffle(macros)
        if rng.random() < 0.3:
            macros = [m.replace(r"\def\eps{\varepsilon}", r"\newcommand{\eps}{\epsilon}") for m in macros]
        self.macros = "% user macros\n" + "\n".join(macros) + "\n"
        self._equation = 0

    def cite(self) -> str:
        return "\\cite{" + ",".join(self.rng.sample(self.cite_keys, self.rng.randint(1, 2))) + "}"

    def inline_math(self) -> str:
        r = self.rng
        v, w = r.sample("xyzuvw", 2)
        i = r.choice("ijkl")
        n = r.choice(("n", "m", "d", "N"))
        c = r.choice(("C", "L", "M", "K"))
        forms = (
            f"{v} \\in \\R^{{{n}}}", f"\\norm{{{v} - {w}}} \\le \\eps", f"f\\colon \\R^{{{n}}} \\to \\R",
            f"\\lambda_{{{i}}} > 0", f"\\E[X_{{{i}}}] = \\mu", f"O({n} \\log {n})",
            f"\\inner{{{v}}}{{{w}}} = 0",
            "t \\ge t_{0}", f"\\sum_{{{i}=1}}^{{{n}}} a_{{{i}}} \\le {c}", f"\\eps < 1/{r.randint(2, 9)}",
            f"{i} = 1, \\dots, {n}", f"A \\in \\R^{{m \\times {n}}}", f"\\norm{{\\nabla f({v})}} \\le {c}",
            f"{c} > {r.randint(1, 9)}", f"\\mathcal{{L}}({v}) \\le {c} \\eps^{{{r.randint(2, 4)}}}",
            f"{v}_{{{i}}} \\to {v}^\\star", f"\\dd {v}", f"{n} \\in \\N",
        )
        return "$" + r.choice(forms) + "$"

    def display_equation(self) -> str:
        r = self.rng
        self._equation += 1
        v = r.choice("xyzu")
        bodies = (
            f"\\norm{{{v}_{{k+1}} - {v}^\\star}} \\le (1 - \\eps) \\norm{{{v}_k - {v}^\\star}}",
            f"\\E\\left[\\norm{{{v}}}^2\\right] = \\int_{{\\R^d}} \\norm{{{v}}}^2 \\, p({v}) \\, \\dd {v}",
            f"\\min_{{{v} \\in \\R^n}} \\; \\frac{{1}}{{2}} \\norm{{A{v} - b}}^2 + \\lambda \\norm{{{v}}}_1",
            f"\\sum_{{k=1}}^{{n}} \\inner{{{v}_k}}{{e_k}}^2 \\le C \\, \\eps^{{-2}} \\log n",
        )
        return (f"\\begin{{equation}}\\label{{eq:{self._equation}}}\n  {r.choice(bodies)}.\n"
                "\\end{equation}")

    def paragraph(self) -> str:
        text = self.writer.paragraph(self.rng.randint(3, 6))
        if self.rng.random() < 0.3:
            text += f" % {self.rng.choice(('TODO: tighten the constant', 'check this step', 'cf. v1'))}"
        return text

    def section(self, title: str, paragraphs: int) -> str:
        parts = [f"\\section{{{title}}}\\label{{sec:{title.split()[0].lower()}}}"]
        for index in range(paragraphs):
            parts.append(self.paragraph())
            if index == 0 and self.rng.random() < 0.6:
                parts.append(self.display_equation())
        return "\n\n".join(parts)

    def title(self) -> str:
        w = self.writer
        return title_case(w.render(self.rng.choice((
            "on the {MA} {MN} of {MA} {MNs}", "{MA} {MNs} for {MA} {MN}",
            "a {MA} approach to {MA} {MNs}", "{MA} bounds for {MA} {MNs}",
            "{MA} {MN} in {MA} {MNs}"))))

    def files(self, split_intro: bool, bib_file: bool) -> dict[str, str]:
        """Return {path: LaTeX source}; `main.tex` is the main file."""
        r = self.rng
        authors = " \\and ".join(self.writer.person() for _ in range(r.randint(1, 4)))
        abstract = self.writer.paragraph(r.randint(4, 6))
        intro = self.section("Introduction", r.randint(2, 4))
        lemma = ("\\begin{lemma}\\label{lem:main}\n" + self.writer.sentence() + "\n\\end{lemma}\n\n"
                 "\\begin{proof}\n" + self.paragraph() + "\n\\end{proof}")
        theorem = ("\\begin{theorem}\\label{thm:main}\n" + self.writer.sentence() + "\n\\end{theorem}")
        figure = ("\\begin{figure}[t]\n  \\centering\n"
                  "  \\includegraphics[width=0.8\\linewidth]{figures/fig1.png}\n"
                  f"  \\caption{{{self.writer.sentence()}}}\n  \\label{{fig:main}}\n\\end{{figure}}")
        body = [
            self.section("Preliminaries", r.randint(2, 3)), lemma,
            self.section("Main results", r.randint(2, 4)), theorem,
            self.section("Numerical experiments", r.randint(1, 3)), figure,
            self.section("Conclusion", r.randint(1, 2)),
        ]
        if bib_file:
            bibliography = "\\bibliographystyle{plain}\n\\bibliography{refs}"
        else:
            items = "\n".join(f"\\bibitem{{{key}}} {self.writer.person()}. {self.title()}. "
                              f"\\emph{{Journal of {self.writer.render('{MA} {MNs}').title()}}}, {key[-4:]}."
                              for key in self.cite_keys)
            bibliography = f"\\begin{{thebibliography}}{{99}}\n{items}\n\\end{{thebibliography}}"
        preamble = (
            "\\documentclass[11pt]{article}\n"
            "\\usepackage[utf8]{inputenc}\n\\usepackage{amsmath,amssymb,amsthm}\n"
            "\\usepackage{graphicx}\n\\usepackage{hyperref}\n\n" + self.macros +
            "\\DeclareMathOperator*{\\argmin}{arg\\,min}\n\n"
            "\\newtheorem{theorem}{Theorem}\n\\newtheorem{lemma}[theorem]{Lemma}\n\n"
            "% generated for the llamapipe demo corpus\n"
            f"\\title{{{self.title()}}}\n\\author{{{authors}}}\n\\date{{}}\n\n"
        )
        files: dict[str, str] = {}
        if split_intro:
            files["sections/intro.tex"] = intro + "\n"
            intro = "\\input{sections/intro}"
        main = (preamble + "\\begin{document}\n\\maketitle\n\n\\begin{abstract}\n" + abstract +
                "\n\\end{abstract}\n\n" + intro + "\n\n" + "\n\n".join(body) + "\n\n" + bibliography +
                "\n\n\\end{document}\n")
        files["main.tex"] = main
        if bib_file:
            files["refs.bib"] = "\n".join(
                f"@article{{{key},\n  author = {{{self.writer.person()}}},\n  title = {{{self.title()}}},\n"
                f"  journal = {{Annals of {self.writer.render('{MA} {MNs}').title()}}},\n"
                f"  year = {{{key[-4:]}}}\n}}\n"
                for key in self.cite_keys)
        return files
