"""Every text a public endpoint can send exists in en, fr, nl and de.

Two halves: the catalogs (every translatable text of the code and the page
templates has a translation in every language, with the same placeholders,
and the compiled .mo files say the same as the .po files); and the answers
(a battery of bad requests to the public endpoints, each message of which
must be one of the catalog's texts in the language asked for, so a message
that was never marked for translation, such as a library's own, fails here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import email_validator
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from quote_service.i18n import LANGUAGES
from quote_service.schemas.fields import EMAIL_GENERAL, EMAIL_PROBLEMS, email_problem
from tests.conftest import base_config
from tests.payloads import minimal_body, valid_body
from tests.support.servers import Server

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "quote_service" / "translations"
TRANSLATED = [language for language in LANGUAGES if language != "en"]
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)s|\{(\w+)\}")
INTAKE = "/api/v1/quote-requests"


def extracted_ids() -> set[str]:
    """The msgids in the code and templates today, as `make messages` extracts them."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    ids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        ids.add(message if isinstance(message, str) else message[0])
    return ids


def po_catalog(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def placeholders(text: str) -> set[str]:
    return {a or b for a, b in PLACEHOLDER.findall(text)}


def msgid(message: Any) -> str:
    """The singular of a plural message, the text of another."""
    return message.id if isinstance(message.id, str) else message.id[0]


def texts(value: Any) -> list[str]:
    """A translation's texts: one, or one per plural form."""
    return [value] if isinstance(value, str) else list(value)


def test_every_text_of_the_code_is_translated_in_every_language():
    ids = extracted_ids()
    assert len(ids) > 50, "extraction found nearly nothing: check babel.cfg"
    for language in TRANSLATED:
        catalog = po_catalog(language)
        in_po = {msgid(m): m for m in catalog if m.id}
        missing = sorted(ids - set(in_po))
        assert not missing, f"{language}: not in the .po (run make messages): {missing}"
        stale = sorted(set(in_po) - ids)
        assert not stale, f"{language}: in the .po but no longer in the code: {stale}"
        untranslated = sorted(
            key for key, m in in_po.items() if m.fuzzy or not all(texts(m.string))
        )
        assert not untranslated, f"{language}: untranslated or fuzzy: {untranslated}"
        for key, message in in_po.items():
            for text in texts(message.string):
                assert placeholders(text) == placeholders(key), (
                    f"{language}: placeholders differ in {key!r}"
                )


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_compiled_catalogs_say_what_the_po_files_say(language: str):
    mo_path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"
    assert mo_path.exists(), "the .mo files are built by `make install` (pybabel compile)"
    with mo_path.open("rb") as mo:
        compiled = {msgid(m): tuple(texts(m.string)) for m in read_mo(mo) if m.id}
    written = {msgid(m): tuple(texts(m.string)) for m in po_catalog(language) if m.id}
    assert compiled == written, "stale .mo: run make install"


# --- what the public endpoints answer ----------------------------------------


def pattern_of(text: str) -> re.Pattern[str]:
    parts = PLACEHOLDER.split(text)
    # split() yields text, name-or-None, name-or-None, text...: keep the texts.
    texts = parts[::3]
    return re.compile(".+?".join(re.escape(t) for t in texts) + r"\Z", re.DOTALL)


def catalog_patterns(language: str) -> list[re.Pattern[str]]:
    if language == "en":
        return [pattern_of(t) for m in po_catalog("fr") if m.id for t in texts(m.id)]
    return [pattern_of(t) for m in po_catalog(language) if m.id for t in texts(m.string)]


def messages_of(body: dict[str, Any]) -> Iterator[str]:
    error = body["error"]
    yield error["message"]
    for messages in (error.get("fields") or {}).values():
        yield from messages


def later(days: int) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


# Bad values, each meant to reach a different message of the intake.
FIELD_CASES: list[tuple[str, Any]] = [
    ("full_name", None),  # required
    ("full_name", "x" * 201),
    ("full_name", "Jan\nPeeters"),
    ("full_name", "Jan\x07"),
    ("full_name", 12),
    ("email", "jan.peeters@"),
    ("email", "jan.peeters.example.org"),
    ("email", "@example.org"),
    ("email", "jan..peeters@example.org"),
    ("email", "jan@localhost"),
    ("email", "jan peeters@example.org"),
    ("email", "Jan <jan@example.org>"),
    ("email", "jan@[127.0.0.1]"),
    ("email", "jan@" + "d" * 64 + ".org"),
    ("email", "jan@example.invalid"),
    ("phone", "12"),
    ("phone", "not a phone"),
    ("country_of_residence", "XX"),
    ("country_of_residence", None),
    ("preferred_language", "xx"),
    ("condition", "unknown-condition"),
    ("destination", "FR"),
    ("treatment", "magic"),
    ("patient_age", 200),
    ("patient_age", "4.5"),
    ("patient_age", True),
    ("budget_eur", "30,000.50"),
    ("budget_eur", -1),
    ("budget_eur", 10**13),
    ("travel_from", "2001-01-01"),
    ("travel_from", later(365 * 6)),
    ("travel_from", "31.02.2027"),
    ("travel_from", 20270101),
    ("message", "x" * 5001),
    ("consent_privacy", False),
    ("consent_privacy", "maybe"),
    ("website", None),  # null: "may not be null"
    ("status", "routed"),  # unknown field
]


def bad_body(field: str, value: Any) -> dict[str, Any]:
    """A valid body but for one field; without `preferred_language`, so Accept-Language counts."""
    body = valid_body(preferred_language=None)
    if value is None and field in ("full_name", "country_of_residence"):
        body.pop(field)
    else:
        body[field] = value
    return body


@pytest.fixture(scope="module")
def answers(app: Flask, make_module_app) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every bad request's answer, in every language (asked by Accept-Language)."""
    # Refused bodies count only against the attempts cap.
    limited = make_module_app(RATE_LIMIT_INTAKE_ATTEMPTS="1/hour")
    answers: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for language in LANGUAGES:
        client = app.test_client()
        headers = {"Accept-Language": language}
        got: list[tuple[str, Any]] = []

        def keep(label: str, response: Any, got: list[tuple[str, Any]] = got) -> None:
            assert response.status_code >= 400, (label, response.status_code)
            got.append((label, response.get_json()))

        for field, value in FIELD_CASES:
            keep(
                f"{field}={value!r}",
                client.post(INTAKE, json=bad_body(field, value), headers=headers),
            )
        keep(
            "condition not at destination",
            client.post(
                INTAKE,
                json=valid_body(
                    destination="AG", condition="diabetes-type-1", preferred_language=None
                ),
                headers=headers,
            ),
        )
        keep(
            "travel window",
            client.post(
                INTAKE,
                json=valid_body(
                    travel_from=later(40), travel_to=later(30), preferred_language=None
                ),
                headers=headers,
            ),
        )
        keep(
            "redirect_to",
            client.post(
                INTAKE,
                data={**minimal_body(consent_privacy="on"), "redirect_to": "https://evil.example/"},
                headers=headers,
            ),
        )
        keep(
            "not json",
            client.post(INTAKE, data="{", content_type="application/json", headers=headers),
        )
        keep("a list", client.post(INTAKE, json=[1], headers=headers))
        keep(
            "nested",
            client.post(INTAKE, data="[" * 5000, content_type="application/json", headers=headers),
        )
        keep("too large", client.post(INTAKE, json={"message": "x" * 70_000}, headers=headers))
        keep(
            "media type", client.post(INTAKE, data="x", content_type="text/plain", headers=headers)
        )
        keep("not found", client.get("/api/v1/nowhere", headers=headers))
        keep("method", client.delete("/api/v1/catalog", headers=headers))
        keep("catalog lang", client.get("/api/v1/catalog?lang=xx", headers=headers))
        keep("catalog lang length", client.get("/api/v1/catalog?lang=x", headers=headers))
        keep(
            "idempotency key",
            client.post(INTAKE, json=minimal_body(), headers={**headers, "Idempotency-Key": "é"}),
        )
        key = {**headers, "Idempotency-Key": f"reused-{language}"}
        assert client.post(INTAKE, json=minimal_body(), headers=key).status_code == 201
        keep("key reused", client.post(INTAKE, json=minimal_body(full_name="Other"), headers=key))
        limited_client = limited.test_client()
        limited_client.post(INTAKE, json={}, headers=headers)
        keep("rate limited", limited_client.post(INTAKE, json={}, headers=headers))
        answers[language] = got
    return answers


@pytest.fixture(scope="module")
def make_module_app(postgres: Server, app: Flask) -> Iterator[Any]:
    from quote_service import create_app
    from quote_service.extensions import db

    made: list[Flask] = []

    def make(**overrides: Any) -> Flask:
        extra = create_app(base_config(postgres.url, **overrides))
        made.append(extra)
        return extra

    yield make
    for extra in made:
        with extra.app_context():
            db.engine.dispose()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_of_a_public_endpoint_is_in_the_catalog_of_its_language(
    answers: dict[str, list[tuple[str, dict[str, Any]]]], language: str
):
    patterns = catalog_patterns(language)
    strays = [
        (label, message)
        for label, body in answers[language]
        for message in messages_of(body)
        if not any(p.match(message) for p in patterns)
    ]
    assert not strays, f"messages not in the {language} catalog: {strays}"


def test_the_codes_are_the_same_in_every_language(
    answers: dict[str, list[tuple[str, dict[str, Any]]]],
):
    def shape(body: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
        return body["error"]["code"], tuple(sorted(body["error"].get("fields") or {}))

    english = [(label, shape(body)) for label, body in answers["en"]]
    for language in TRANSLATED:
        assert [(label, shape(body)) for label, body in answers[language]] == english
        # And the words did change: nothing stayed English.
        same = [
            message
            for (_, en_body), (_, body) in zip(answers["en"], answers[language], strict=True)
            for en_message, message in zip(messages_of(en_body), messages_of(body), strict=True)
            if en_message == message
        ]
        assert not same, f"{language}: still in English: {same}"


def test_every_email_validator_wording_family_is_reached():
    """Each of our email messages stands for refusals email-validator really makes."""
    samples = [
        "jan.peeters.example.org",
        "@example.org",
        "jan@",
        "jan@" + "d" * 64 + ".org",
        "jan..peeters@example.org",
        "jan@example",
        "jan@localhost",
        "Jan <jan@example.org>",
        "jan@[127.0.0.1]",
        "jan peeters@example.org",
        "jan@xn--a.example",
        "jan@example.invalid",
    ]
    reached = set()
    for address in samples:
        with pytest.raises(email_validator.EmailNotValidError) as refusal:
            email_validator.validate_email(address, check_deliverability=False)
        reached.add(email_problem(refusal.value)._args[0])
    assert reached == {message._args[0] for _, message in EMAIL_PROBLEMS}
    assert email_problem(email_validator.EmailSyntaxError("unforeseen")) is EMAIL_GENERAL


# --- which language -------------------------------------------------------------


def field_message(client: FlaskClient, body: dict[str, Any], **headers: str) -> str:
    response = client.post(INTAKE, json=body, headers=headers)
    assert response.status_code == 422
    return response.get_json()["error"]["fields"]["email"][0]


def test_preferred_language_of_the_body_wins_over_accept_language(client: FlaskClient):
    body = minimal_body(email="jan@", preferred_language="de")
    message = field_message(client, body, **{"Accept-Language": "fr"})
    assert message == "Geben Sie eine gültige E-Mail-Adresse an: Nach dem @-Zeichen fehlt etwas."


def test_an_invalid_preferred_language_falls_back_to_accept_language(client: FlaskClient):
    body = minimal_body(email="jan@", preferred_language="xx")
    message = field_message(client, body, **{"Accept-Language": "nl-BE,nl;q=0.9,en;q=0.5"})
    assert message == "Geef een geldig e-mailadres op: er ontbreekt iets na het @-teken."


def test_without_either_the_answer_is_english(client: FlaskClient):
    body = minimal_body(email="jan@")
    assert field_message(client, body) == (
        "Enter a valid email address: something is missing after the @ sign."
    )
    other = field_message(client, body, **{"Accept-Language": "es, it;q=0.8"})
    assert other == "Enter a valid email address: something is missing after the @ sign."


def test_a_form_post_is_read_in_its_preferred_language_too(client: FlaskClient):
    form = {**minimal_body(consent_privacy="on"), "email": "jan@", "preferred_language": "fr"}
    response = client.post(INTAKE, data=form)
    assert response.get_json()["error"]["fields"]["email"] == [
        "Indiquez une adresse e-mail valide : il manque quelque chose après le @."
    ]


def test_the_coordinators_api_answers_in_english(client: FlaskClient):
    response = client.get("/api/v1/quote-requests", headers={"Accept-Language": "fr"})
    assert response.status_code == 401
    assert response.get_json()["error"]["message"].startswith("Send an API token")


def test_a_catalog_condition_message_names_the_destination_in_the_language(client: FlaskClient):
    body = minimal_body(destination="AG", condition="diabetes-type-1", preferred_language="fr")
    response = client.post(INTAKE, json=body)
    assert response.get_json()["error"]["fields"]["condition"] == [
        "Cette affection n’est pas proposée à cette destination : Antigua-et-Barbuda."
    ]
