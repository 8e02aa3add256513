"""GET /api/v1/catalog: the texts a form renders, in the language it asks for."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

URL = "/api/v1/catalog"
GLOBAL_KEYS = {
    "not-medical-advice",
    "consult-your-physician",
    "no-endorsement",
    "no-warranty",
    "stem-cell-experimental",
}


def test_catalog_shape_in_english(client: FlaskClient):
    response = client.get(URL)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {
        "destinations",
        "conditions",
        "treatments",
        "quote_items",
        "languages",
        "consent",
        "disclaimers",
        "countries",
        "first_response_hours",
        "organisation",
    }
    assert body["languages"] == ["en", "fr", "nl", "de"]
    destinations = {d["code"]: d for d in body["destinations"]}
    assert destinations["BE"]["name"] == "Belgium"
    assert destinations["BE"]["conditions"] == [
        "stroke",
        "stroke-rehabilitation",
        "diabetes-type-1",
        "diabetes-type-2",
    ]
    assert "diabetes-type-1" not in destinations["AG"]["conditions"]
    assert [c["slug"] for c in body["conditions"]] == [
        "stroke",
        "stroke-rehabilitation",
        "diabetes-type-1",
        "diabetes-type-2",
    ]
    assert {"slug": "stroke", "name": "Stroke"} in body["conditions"]
    assert [t["slug"] for t in body["treatments"]] == ["msc", "ipsc", "nsc", "unsure"]
    assert body["consent"]["language"] == "en"
    assert body["consent"]["version"] >= 1
    assert body["consent"]["text"]


def test_disclaimers_carry_key_version_scope_and_text(client: FlaskClient):
    disclaimers = client.get(URL).get_json()["disclaimers"]
    by_key = {d["key"]: d for d in disclaimers}
    assert GLOBAL_KEYS <= set(by_key)
    for key in GLOBAL_KEYS:
        assert by_key[key]["scope"] == {"destination": None, "condition": None, "context": None}
        assert by_key[key]["required"] is True
        assert by_key[key]["language"] == "en"
    assert by_key["destination-be"]["scope"] == {
        "destination": "BE",
        "condition": None,
        "context": None,
    }
    assert by_key["stroke-emergency"]["scope"] == {
        "destination": None,
        "condition": "stroke",
        "context": None,
    }
    assert all(isinstance(d["version"], int) and d["text"] for d in disclaimers)


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_texts_come_in_the_language_asked_for(client: FlaskClient, lang: str):
    english = client.get(URL).get_json()
    body = client.get(URL, query_string={"lang": lang}).get_json()
    assert body["consent"]["language"] == lang
    assert body["consent"]["text"] != english["consent"]["text"]
    assert all(d["language"] == lang for d in body["disclaimers"])
    assert {d["key"] for d in body["disclaimers"]} == {d["key"] for d in english["disclaimers"]}
    assert body["conditions"][0]["name"] != english["conditions"][0]["name"]


def test_a_regional_language_tag_uses_its_language(client: FlaskClient):
    body = client.get(URL, query_string={"lang": "fr-BE"}).get_json()
    assert body["consent"]["language"] == "fr"
    assert {"code": "BE", "name": "Belgique"}.items() <= body["destinations"][0].items()


@pytest.mark.parametrize("lang", ["es", "xx", "", "f"])
def test_unsupported_language_is_422(client: FlaskClient, lang: str):
    response = client.get(URL, query_string={"lang": lang})
    assert response.status_code == 422
    assert "lang" in response.get_json()["error"]["fields"]


def test_unknown_query_parameters_are_ignored(client: FlaskClient):
    # Websites add cache busters (`?_=1700000000`); a GET must not break on them.
    response = client.get(URL, query_string={"_": "1700000000", "lang": "nl"})
    assert response.status_code == 200
    assert response.get_json()["consent"]["language"] == "nl"


def test_countries_are_named_in_the_language_and_sorted_by_name(client: FlaskClient):
    body = client.get(URL + "?lang=de").get_json()
    names = {c["code"]: c["name"] for c in body["countries"]}
    assert names["BE"] == "Belgien" and names["DE"] == "Deutschland" and len(names) > 240
    order = [c["code"] for c in body["countries"]]
    assert order.index("EG") < order.index("BE")  # Ägypten sorts with A
    assert body["first_response_hours"] == 24
