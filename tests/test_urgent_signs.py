"""The urgent-sign engine: normalising, negation, onset and history, the rule file."""

from __future__ import annotations

import pytest

from quote_service.safety import signs
from quote_service.safety.emergency import advice, emergency_number
from quote_service.safety.signs import PatternError, assess, compile_patterns, normalise, ruleset


def rules_of(text: str) -> list[str]:
    return assess(text).rule_ids


def test_the_rule_file_compiles_with_a_version_and_every_language():
    rules = ruleset()
    assert rules.version
    assert {rule.id for rule in rules.rules} >= {
        "stroke-face",
        "stroke-arm-leg",
        "stroke-speech",
        "stroke-balance",
        "stroke-eyes",
        "headache-worst-ever",
        "confusion-sudden",
        "unconscious-seizure-swallow",
        "diabetic-ketoacidosis",
        "chest-pain",
        "suicidal-intent",
    }
    for rule in rules.rules:
        assert set(rule.signs) == set(signs.LANGUAGES)
    assert set(rules.advice) == set(signs.LANGUAGES)


def test_rules_are_compiled_once_per_process():
    assert ruleset() is ruleset()


def test_normalising_folds_accents_case_repeats_and_punctuation():
    assert normalise("Plötzlich SLURRED, speech!") == " plotzlich slured , spech . "
    assert normalise("sugar 2.1 at 10:30") == " sugar 2_1 at 10_30 "
    assert normalise("can't l'œil") == " can t l oeil "


def test_pattern_syntax():
    regex = compile_patterns(["(arm|leg) ... weak*", "#year", "face droop* (now)?"])
    assert regex.search(normalise("my arm is really very weak"))
    assert not regex.search(normalise("my arm is really very very much weak"))
    assert regex.search(normalise("in 2021"))
    assert not regex.search(normalise("sugar 3021"))
    assert regex.search(normalise("face drooping"))
    # German umlauts match the "ue" spelling as well.
    umlaut = compile_patterns(["plötzlich"])
    assert umlaut.search(normalise("ploetzlich")) and umlaut.search(normalise("plotzlich"))
    for bad in ("(arm", "arm)", "... weak", "arm?", ""):
        with pytest.raises(PatternError):
            compile_patterns([bad])


@pytest.mark.parametrize(
    "text",
    [
        "my mother's face is drooping and she can't lift her arm, it started an hour ago",
        "MY FATHER'S FACE IS DROOPING SINCE THIS MORNING",
        "sa bouche est de travers depuis ce matin",
        "Sein Gesicht hängt seit heute Morgen",
        "zijn gezicht hangt scheef sinds vanochtend",
    ],
)
def test_a_stroke_sign_with_an_onset_is_urgent(text):
    assert "stroke-face" in rules_of(text)


@pytest.mark.parametrize(
    "text",
    [
        "weak left arm since my stroke in 2021",
        "no chest pain",
        "insulin since childhood",
        "pas de douleur thoracique",
        "geen pijn op de borst",
        "keine Brustschmerzen",
        "face drooping ever since the stroke",
        "She still cannot lift her arm.",
    ],
)
def test_histories_and_negations_are_not_urgent(text):
    assert not assess(text).urgent


def test_a_stroke_sign_without_any_onset_is_not_urgent():
    assert not assess("left arm weakness and slurred speech").urgent


def test_a_negation_stops_at_the_clause():
    assert "chest-pain" in rules_of("No fever, but chest pain right now")
    assert "chest-pain" not in rules_of("no fever and no chest pain")


def test_a_negation_does_not_reach_past_and():
    assert "stroke-arm-leg" in rules_of("her hand does not work and she talks funny since noon")
    assert "stroke-speech" in rules_of("zijn arm werkt niet meer en hij praat raar sinds gisteren")
    # Dutch "een" (a) folds to "en" (and): it must not end the clause.
    assert not assess("geen een enkele pijn op de borst").urgent


def test_a_history_past_a_comma_counts_only_right_after_it():
    assert not assess("chest pain, when he climbs stairs").urgent
    text = "her breath smells of nail polish, type 1 since she was 12"
    assert "diabetic-ketoacidosis" in rules_of(text)


def test_a_sign_that_contains_a_negation_is_still_a_sign():
    assert "stroke-speech" in rules_of("he cannot speak since this morning")
    assert "stroke-speech" in rules_of("il ne peut plus parler depuis ce matin")


def test_the_nearest_time_cue_wins():
    text = "Weak arm since the stroke in 2019, and since this morning her face is drooping."
    assert rules_of(text) == ["stroke-face"]


def test_an_onset_in_the_next_sentence_counts():
    assert "stroke-face" in rules_of("Her face is drooping. It started an hour ago.")


def test_signs_needing_no_onset():
    assert "suicidal-intent" in rules_of("I want to end my life")
    assert "unconscious-seizure-swallow" in rules_of("he is unconscious")
    assert not assess("he had a seizure once, years ago").urgent
    assert not assess("no suicidal thoughts").urgent


def test_empty_messages_are_not_urgent():
    assert assess(None).urgent is False
    assert assess("   ").urgent is False
    assert assess("").version == ruleset().version


def test_emergency_numbers_by_country():
    assert emergency_number("BE").number == "112"
    assert emergency_number("us").number == "911"
    assert emergency_number("CA").number == "911"
    assert emergency_number("AG").number == "911"
    assert emergency_number("GB").number == "999"
    assert "112" in emergency_number("GB").also
    assert emergency_number("NO").number == "113"  # quoted key: YAML reads NO as false
    unknown = emergency_number("ZZ")
    assert (unknown.number, unknown.known) == ("112", False)
    assert emergency_number(None).number == "112"


def test_advice_in_the_patient_language_never_a_diagnosis():
    text, number = advice("en", "GB")
    assert number == "999"
    assert "This may be an emergency" in text and "999 (or 112)" in text
    text, number = advice("fr", "FR")
    assert text.startswith("Il peut s'agir d'une urgence") and number == "112"
    text, number = advice("de", "ZZ")
    assert "örtliche Notrufnummer" in text and "112" in text and number == "112"
    text, _ = advice("nl", "BE")
    assert text.startswith("Dit kan een noodgeval zijn")
    # A language without its own text falls back to English.
    assert advice("pt", "US")[0].startswith("This may be an emergency")
    for language in signs.LANGUAGES:
        for country in ("BE", "ZZ"):
            assert "stroke" not in advice(language, country)[0].lower()
