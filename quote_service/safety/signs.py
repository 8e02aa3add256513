"""Urgent signs: does a patient's message describe something that may be an emergency now?

The rules live in `quote_service/data/urgent_signs.yaml` (one file, versioned,
in en, fr, nl and de); this module only compiles and applies them. It is a
safety notice, never a diagnosis: a match means "tell the patient to call the
emergency number and alert a coordinator", nothing more.

How a message is read:

1. It is normalised once: Unicode folded to ASCII (unidecode: "é" is "e",
   "ß" is "ss"), lower case, apostrophes and hyphens become spaces, runs of
   one letter become one ("slurred" and "slured" read alike), decimals keep
   their digits ("2.1"), and punctuation is reduced to two tokens: "." ends a
   sentence, "," ends a clause.
2. Each rule's signs (per language) are searched for. A sign never spans a
   "." or ",", since patterns only match words.
3. A sign is dropped when a negation cue of its language ("no", "pas",
   "geen", "kein"...) comes shortly before it in the same clause.
4. Time decides the rest. A rule with `onset: required` (stroke signs,
   headache, confusion) needs an onset cue ("since this morning", "an hour
   ago", "suddenly"...) in its sentence, nearer than any history cue ("since
   my stroke in 2021", "still", "years ago"); a strong onset cue in the
   next or previous sentence also counts. A rule with `onset: not_required`
   (chest pain, unconsciousness, suicidal intent...) is dropped only when a
   history cue sits right next to the sign ("had a seizure once").

Everything is compiled once per process (`ruleset()` is cached), so
assessing a message costs a few regular-expression scans.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from unidecode import unidecode

LANGUAGES = ("en", "fr", "nl", "de")
CUE_KINDS = ("onset", "present", "manner", "history", "negation", "not_negation", "clause_break")
WORD = r"[a-z0-9_]+"
SHORT_GAP = 4
# A negation cue covers the sign when at most this many words sit between them.
NEGATION_WINDOW = 5
# For signs that need no onset, a history cue this close (in words) marks a past event.
HISTORY_WINDOW = 3


def rules_path() -> Path:
    return Path(str(resources.files("quote_service") / "data" / "urgent_signs.yaml"))


# --- Normalising text ---------------------------------------------------------

_DECIMAL = re.compile(r"(\d)[.,:h](\d)")
_SENTENCE_END = re.compile(r"[.!?\n\r]+")
_CLAUSE_END = re.compile(r"[,;:()\[\]]+")
_OTHER = re.compile(r"[^a-z0-9_.,]+")
_REPEATS = re.compile(r"([a-z])\1+")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """`text` as the rules read it: ASCII words, "." and "," tokens, single spaces."""
    folded = unidecode(text).lower()
    folded = _DECIMAL.sub(r"\1_\2", folded)
    folded = _SENTENCE_END.sub(" . ", folded)
    folded = _CLAUSE_END.sub(" , ", folded)
    folded = _OTHER.sub(" ", folded)
    folded = _REPEATS.sub(r"\1", folded)
    return " " + _SPACES.sub(" ", folded).strip() + " "


def _literal_words(word: str) -> list[str]:
    """Spellings of one pattern word: German umlauts match both "u" and "ue"."""
    spellings = {word}
    if any(char in word for char in "äöüÄÖÜ"):
        spellings.add(
            word.replace("ä", "ae").replace("ö", "oe").replace("ü", "ue").replace("Ä", "ae")
        )
    return sorted({normalise(spelling).strip() for spelling in spellings} - {""})


# --- Compiling patterns -------------------------------------------------------
#
# A pattern is words separated by spaces, with:
#   word*      any word starting with "word"
#   (a|b c)    one of several alternatives (each a pattern itself)
#   term?      an optional word or group
#   ...        up to four words of anything;  ~N  up to N words
#   #          a number;  #year  a year from 1900 to 2099


class PatternError(ValueError):
    pass


def _split_top(source: str, separator: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in source:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise PatternError(f"unbalanced ')' in {source!r}")
        if char == separator and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise PatternError(f"unbalanced '(' in {source!r}")
    parts.append("".join(current))
    return parts


def _gap(words: int) -> str:
    return f"(?: {WORD}){{0,{words}}}"


def _term(term: str) -> tuple[str, bool, bool]:
    """(regex, is_gap, optional) of one term."""
    if term == "...":
        return _gap(SHORT_GAP), True, False
    if re.fullmatch(r"~\d{1,2}", term):
        return _gap(int(term[1:])), True, False
    optional = term.endswith("?")
    if optional:
        term = term[:-1]
    if term.startswith("(") and term.endswith(")"):
        alternatives = [compile_pattern(alt) for alt in _split_top(term[1:-1], "|")]
        return "(?:" + "|".join(alternatives) + ")", False, optional
    if term == "#":
        return r"[0-9]+(?:_[0-9]+)?", False, optional
    if term == "#year":
        return r"(?:19|20)[0-9]{2}", False, optional
    prefix = term.endswith("*")
    spellings = _literal_words(term.rstrip("*"))
    if not spellings:
        raise PatternError(f"empty word in pattern term {term!r}")
    body = "(?:" + "|".join(re.escape(s) for s in spellings) + ")"
    return body + ("[a-z0-9_]*" if prefix else ""), False, optional


def compile_pattern(source: str) -> str:
    """The regular expression of one pattern (see the syntax above)."""
    terms = [t for t in _split_top(source.strip(), " ") if t]
    if not terms:
        raise PatternError("empty pattern")
    regex = ""
    for index, term in enumerate(terms):
        piece, is_gap, optional = _term(term)
        if is_gap:
            if index in (0, len(terms) - 1):
                raise PatternError(f"a gap cannot start or end a pattern: {source!r}")
            regex += piece
        elif index == 0:
            if optional:
                raise PatternError(f"a pattern cannot start with an optional term: {source!r}")
            regex = piece
        else:
            regex += f"(?: {piece})?" if optional else f" {piece}"
    return regex


def compile_patterns(sources: list[str]) -> re.Pattern[str]:
    body = "|".join(f"(?:{compile_pattern(source)})" for source in sources)
    return re.compile(rf"(?<![a-z0-9_])(?:{body})(?![a-z0-9_])")


# --- The rule set -------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    id: str
    category: str
    label: str
    onset_required: bool
    signs: dict[str, re.Pattern[str]]


@dataclass(frozen=True)
class RuleSet:
    version: str
    rules: tuple[Rule, ...]
    cues: dict[str, dict[str, re.Pattern[str] | None]]
    function_words: dict[str, frozenset[str]]
    advice: dict[str, dict[str, str]]


@dataclass(frozen=True)
class SignMatch:
    rule: str
    category: str
    language: str


@dataclass(frozen=True)
class Assessment:
    urgent: bool
    matches: tuple[SignMatch, ...]
    version: str

    @property
    def rule_ids(self) -> list[str]:
        return [match.rule for match in self.matches]


def load_ruleset(raw: dict[str, Any]) -> RuleSet:
    """Compile a parsed rule file; a mistake in it is an error naming the rule."""
    version = str(raw["version"])
    cues: dict[str, dict[str, re.Pattern[str] | None]] = {}
    for language in LANGUAGES:
        listed = raw["cues"][language]
        unknown = set(listed) - set(CUE_KINDS)
        if unknown:
            raise PatternError(f"unknown cue kinds in {language}: {sorted(unknown)}")
        cues[language] = {
            kind: compile_patterns(listed[kind]) if listed.get(kind) else None for kind in CUE_KINDS
        }
    rules = []
    for entry in raw["rules"]:
        try:
            signs = {language: compile_patterns(entry["signs"][language]) for language in LANGUAGES}
        except (KeyError, PatternError, re.error) as error:
            raise PatternError(f"rule {entry.get('id')}: {error}") from error
        if entry["onset"] not in ("required", "not_required"):
            raise PatternError(f"rule {entry['id']}: onset is required or not_required")
        rules.append(
            Rule(
                id=entry["id"],
                category=entry["category"],
                label=entry["label"],
                onset_required=entry["onset"] == "required",
                signs=signs,
            )
        )
    function_words = {
        language: frozenset(normalise(" ".join(raw["function_words"][language])).split())
        for language in LANGUAGES
    }
    return RuleSet(
        version=version,
        rules=tuple(rules),
        cues=cues,
        function_words=function_words,
        advice=raw["advice"],
    )


@lru_cache(maxsize=1)
def ruleset() -> RuleSet:
    """The shipped rules, compiled once per process."""
    return load_ruleset(yaml.safe_load(rules_path().read_text(encoding="utf-8")))


# --- Reading one message ------------------------------------------------------

Span = tuple[int, int]


class _Reading:
    """One normalised message, with its cue spans found lazily per language."""

    def __init__(self, text: str, rules: RuleSet) -> None:
        self.text = text
        self.rules = rules
        self.sentence_ends = [m.start() for m in re.finditer(r" \. ", text)]
        self.punctuation = [m.start() for m in re.finditer(r" [.,] ", text)]
        self._cues: dict[str, dict[str, list[Span]]] = {}
        self._merged: dict[str, dict[str, list[Span]]] = {}
        self._breaks: dict[str, tuple[list[int], list[int]]] = {}
        self._language: str | None = None

    @property
    def language(self) -> str:
        """The language the message is mostly written in, by its commonest small words."""
        if self._language is None:
            words = self.text.split()
            counts = {
                language: sum(word in self.rules.function_words[language] for word in words)
                for language in LANGUAGES
            }
            self._language = max(LANGUAGES, key=lambda language: counts[language])
        return self._language

    def cues(self, language: str) -> dict[str, list[Span]]:
        """Cue spans of the sign's language and of the message's (they differ for
        a word shared by two languages: "confusion", "convulsions", "suicide")."""
        if language == self.language:
            return self._cues_of(language)
        if language not in self._merged:
            own, message = self._cues_of(language), self._cues_of(self.language)
            self._merged[language] = {
                kind: sorted(set(own[kind] + message[kind])) for kind in CUE_KINDS
            }
        return self._merged[language]

    def _cues_of(self, language: str) -> dict[str, list[Span]]:
        if language not in self._cues:
            found: dict[str, list[Span]] = {}
            for kind, regex in self.rules.cues[language].items():
                found[kind] = [m.span() for m in regex.finditer(self.text)] if regex else []
            # "auf einmal" (suddenly) is not "einmal" (once): a history cue inside
            # an onset cue is part of it.
            now = found["onset"] + found["present"] + found["manner"]
            found["history"] = [
                h for h in found["history"] if not any(s <= h[0] and h[1] <= e for s, e in now)
            ]
            self._cues[language] = found
        return self._cues[language]

    def sentence(self, position: int) -> tuple[int, int, int]:
        """(index, start, end) of the sentence holding `position`."""
        index = bisect.bisect_right(self.sentence_ends, position)
        start = self.sentence_ends[index - 1] + 2 if index > 0 else 0
        end = self.sentence_ends[index] if index < len(self.sentence_ends) else len(self.text)
        return index, start, end

    def sentence_bounds(self, index: int) -> Span | None:
        if index < 0 or index > len(self.sentence_ends):
            return None
        start = self.sentence_ends[index - 1] + 2 if index > 0 else 0
        end = self.sentence_ends[index] if index < len(self.sentence_ends) else len(self.text)
        return start, end

    def clause(self, sign: Span, language: str) -> Span:
        """The clause around a sign: between the punctuation or "but" words either side."""
        if language not in self._breaks:
            breaks = sorted(
                [(p, p + 3) for p in self.punctuation] + self.cues(language)["clause_break"]
            )
            self._breaks[language] = ([b for b, _ in breaks], sorted(e for _, e in breaks))
        begins, ends = self._breaks[language]
        before = bisect.bisect_right(ends, sign[0])
        after = bisect.bisect_left(begins, sign[1])
        start = ends[before - 1] if before > 0 else 0
        end = begins[after] if after < len(begins) else len(self.text)
        return start, end

    def words_between(self, start: int, end: int) -> int:
        return len(self.text[start:end].split()) if end > start else 0

    def crosses_clause(self, start: int, end: int, language: str) -> bool:
        if end <= start:
            return False
        index = bisect.bisect_left(self.punctuation, start)
        if index < len(self.punctuation) and self.punctuation[index] < end:
            return True
        breaks = self.cues(language)["clause_break"]
        index = bisect.bisect_left(breaks, start, key=lambda span: span[0])
        return index < len(breaks) and breaks[index][0] < end


def _distance(a: Span, b: Span) -> int:
    """Characters between two spans; 0 when they touch or overlap."""
    return max(0, b[0] - a[1], a[0] - b[1])


def _negated(reading: _Reading, sign: Span, language: str) -> bool:
    cues = reading.cues(language)
    # Only cues shortly before the sign can reach it (five words, long ones included).
    for start, end in _within(cues["negation"], (max(0, sign[0] - 200), sign[0])):
        if end > sign[0]:
            continue  # after the sign, or part of it ("cannot speak")
        if any(
            s <= start and end <= e
            for s, e in _within(cues["not_negation"], (start - 60, end + 60))
        ):
            continue  # "not sure", "je ne sais pas"...
        if reading.crosses_clause(end, sign[0], language):
            continue
        if reading.words_between(end, sign[0]) <= NEGATION_WINDOW:
            return True
    return False


def _within(spans: list[Span], bounds: Span) -> list[Span]:
    """The spans (sorted by start) that lie inside `bounds`."""
    found = []
    for index in range(bisect.bisect_left(spans, bounds[0], key=lambda span: span[0]), len(spans)):
        span = spans[index]
        if span[0] > bounds[1]:
            break
        if span[1] <= bounds[1]:
            found.append(span)
    return found


def _timing(reading: _Reading, sign: Span, language: str) -> str:
    """ "acute", "history" or "unknown" for a sign needing an onset."""
    cues = reading.cues(language)
    index, start, end = reading.sentence(sign[0])
    # The sign's own clause speaks first, then its sentence.
    for here in (reading.clause(sign, language), (start, end)):
        anchors = [("acute", s) for s in _within(cues["onset"] + cues["present"], here)]
        anchors += [("history", s) for s in _within(cues["history"], here)]
        if anchors:
            return min(anchors, key=lambda anchor: _distance(anchor[1], sign))[0]
    here = (start, end)
    if _within(cues["manner"], here):
        return "acute"
    for neighbour in (index - 1, index + 1):
        bounds = reading.sentence_bounds(neighbour)
        if bounds and _within(cues["onset"], bounds) and not _within(cues["history"], bounds):
            return "acute"
    return "unknown"


def _past_event(reading: _Reading, sign: Span, language: str) -> bool:
    """For a sign needing no onset: a history cue right next to it, and no onset cue nearer.

    "Right next to it" is within three words in its clause ("had a seizure once"),
    or just past a comma ("chest pain, when he climbs stairs"); a history cue
    further off in another clause is about something else ("breath smells of
    nail polish, type 1 since she was 12").
    """
    cues = reading.cues(language)
    clause = reading.clause(sign, language)
    _, start, end = reading.sentence(sign[0])
    sentence = (start, end)

    def words_away(span: Span) -> int:
        if span[1] <= sign[0]:
            return reading.words_between(span[1], sign[0])
        if span[0] >= sign[1]:
            return reading.words_between(sign[1], span[0])
        return 0

    history = [words_away(s) for s in _within(cues["history"], clause)]
    history = [distance for distance in history if distance <= HISTORY_WINDOW]
    history += [d for d in map(words_away, _within(cues["history"], sentence)) if d <= 1]
    if not history:
        return False
    onset = [words_away(s) for s in _within(cues["onset"] + cues["present"], sentence)]
    return not onset or min(history) < min(onset)


def assess(message: str | None, rules: RuleSet | None = None) -> Assessment:
    """Which urgent-sign rules a message matches (at most one match per rule)."""
    rules = rules or ruleset()
    if not message or not message.strip():
        return Assessment(False, (), rules.version)
    reading = _Reading(normalise(message), rules)
    matches = []
    for rule in rules.rules:
        for language, regex in rule.signs.items():
            if _rule_matches(reading, rule, language, regex):
                matches.append(SignMatch(rule.id, rule.category, language))
                break
    return Assessment(bool(matches), tuple(matches), rules.version)


def _rule_matches(reading: _Reading, rule: Rule, language: str, regex: re.Pattern[str]) -> bool:
    for found in regex.finditer(reading.text):
        sign = found.span()
        if _negated(reading, sign, language):
            continue
        if rule.onset_required:
            if _timing(reading, sign, language) == "acute":
                return True
        elif not _past_event(reading, sign, language):
            return True
    return False
