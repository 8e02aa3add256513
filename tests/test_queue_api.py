"""GET /api/v1/quote-requests and /<reference>: authenticated, filtered, paged exactly once."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import QuoteRequest, utcnow
from quote_service.services import pipeline
from quote_service.services.users import revoke_user
from tests.conftest import Caller
from tests.payloads import minimal_body
from tests.routing_fixtures import received_row

URL = "/api/v1/quote-requests"
EMAIL_NUMBERS = itertools.count()


def post(client: FlaskClient, **overrides) -> str:
    # An address of its own: the same request again would link to the first (test_duplicates).
    overrides.setdefault("email", f"patient.{next(EMAIL_NUMBERS)}@example.org")
    response = client.post(URL, json=minimal_body(**overrides))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["reference"]


def stored(reference: str) -> QuoteRequest:
    return db.session.execute(
        db.select(QuoteRequest).where(QuoteRequest.reference == reference)
    ).scalar_one()


def references(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [item["reference"] for item in response.get_json()["items"]]


def page_through(client, headers, **params) -> list[str]:
    seen, cursor = [], None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, query_string=query, headers=headers).get_json()
        seen += [item["reference"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("paging did not end")


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer qs_not-a-real-token"},
        {"Authorization": "Basic YWxhZGRpbjpvcGVuc2VzYW1l"},
    ],
    ids=["none", "empty", "wrong", "basic"],
)
@pytest.mark.parametrize("path", [URL, f"{URL}/QR-AAAAAAAA"])
def test_missing_or_wrong_token_is_401(client: FlaskClient, headers, path):
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_revoked_token_is_401(client: FlaskClient, app, coordinator: Caller):
    assert client.get(URL, headers=coordinator.headers).status_code == 200
    with app.app_context():
        revoke_user(coordinator.email)
    assert client.get(URL, headers=coordinator.headers).status_code == 401


def test_no_token_gets_401_before_any_validation(client: FlaskClient):
    response = client.get(URL, query_string={"limit": "many"})
    assert response.status_code == 401


def test_unknown_reference_is_404(client: FlaskClient, coordinator: Caller):
    response = client.get(f"{URL}/QR-AAAAAAAA", headers=coordinator.headers)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"status": "lost"}, "status"),
        ({"sort": "random"}, "sort"),
        ({"assignee": "bob"}, "assignee"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"destination": "XX"}, "destination"),
    ],
)
def test_bad_query_arguments_are_422(client: FlaskClient, coordinator: Caller, params, field):
    response = client.get(URL, query_string=params, headers=coordinator.headers)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]


# --- listing ------------------------------------------------------------------


def test_items_carry_the_queue_fields_newest_first(client, coordinator: Caller):
    first = post(client)
    second = post(client, destination="BE", condition="stroke")
    body = client.get(URL, headers=coordinator.headers).get_json()
    assert [item["reference"] for item in body["items"]] == [second, first]
    item = body["items"][0]
    for key in (
        "reference",
        "status",
        "created_at",
        "destination",
        "condition",
        "provider",
        "assignee",
        "version",
    ):
        assert key in item
    assert (item["destination"], item["condition"], item["provider"]) == ("BE", "stroke", None)
    assert body["next_cursor"] is None


def test_filters(client, app_context, coordinator: Caller, other_coordinator: Caller):
    be_stroke = post(client, destination="BE", condition="stroke")
    ag_diabetes = post(client, destination="AG", condition="diabetes-type-2")
    routed = post(client, destination="BE", condition="diabetes-type-1")
    pipeline.process_received(received_row(stored(routed)).id)
    mine = stored(be_stroke)
    mine.assignee_id = coordinator.id
    stored(ag_diabetes).assignee_id = other_coordinator.id
    db.session.commit()
    provider_id = stored(routed).provider_id

    def find(**params) -> set[str]:
        return set(references(client.get(URL, query_string=params, headers=coordinator.headers)))

    assert find(destination="AG") == {ag_diabetes}
    assert find(condition="stroke") == {be_stroke}
    assert find(status="routed") == {routed}
    assert find(status=["routed", "received"]) == {be_stroke, ag_diabetes, routed}
    assert find(provider=provider_id) == {routed}
    assert find(assignee="me") == {be_stroke}
    assert find(assignee=str(other_coordinator.id)) == {ag_diabetes}
    assert find(assignee="none") == {routed}


def test_search_by_reference_email_and_name(client, coordinator: Caller):
    jan = post(client, full_name="Jan Peeters", email="jan.peeters@example.org")
    post(client, full_name="Marie Dubois", email="marie@example.org")

    def find(q: str) -> list[str]:
        return references(client.get(URL, query_string={"q": q}, headers=coordinator.headers))

    assert find(jan) == [jan]
    assert find(jan.lower()) == [jan]
    assert find("jan.peeters@EXAMPLE.org") == [jan]
    assert find("peeters") == [jan]
    assert find("PEET") == [jan]
    assert find("%") == []  # wildcards are literal
    assert find("jan.peeters@example.com") == []


def test_created_bounds(client, app_context, coordinator: Caller):
    old = post(client)
    new = post(client)
    stored(old).created_at = utcnow() - timedelta(days=10)
    db.session.commit()
    after = (utcnow() - timedelta(days=1)).isoformat()
    assert references(
        client.get(URL, query_string={"created_after": after}, headers=coordinator.headers)
    ) == [new]
    assert references(
        client.get(URL, query_string={"created_before": after}, headers=coordinator.headers)
    ) == [old]


def test_spam_is_out_of_the_default_queue(client, coordinator: Caller):
    real = post(client)
    spam = post(client, website="http://spam.example")
    assert references(client.get(URL, headers=coordinator.headers)) == [real]
    only_spam = client.get(URL, query_string={"status": "spam"}, headers=coordinator.headers)
    assert references(only_spam) == [spam]


def test_paging_returns_every_item_once_in_both_orders(client, coordinator: Caller):
    created = [post(client) for _ in range(23)]
    newest = page_through(client, coordinator.headers, limit=5)
    oldest = page_through(client, coordinator.headers, limit=5, sort="oldest")
    assert newest == list(reversed(created))
    assert oldest == created


def test_paging_with_inserts_between_pages(client, coordinator: Caller):
    created = [post(client) for _ in range(12)]
    seen_newest, seen_oldest = [], []
    cursors = {"newest": None, "oldest": None}
    arrived = []
    for _ in range(10):
        for sort, seen in (("newest", seen_newest), ("oldest", seen_oldest)):
            query = {"limit": 4, "sort": sort}
            if cursors[sort]:
                query["cursor"] = cursors[sort]
            if cursors[sort] is False:
                continue
            body = client.get(URL, query_string=query, headers=coordinator.headers).get_json()
            seen += [item["reference"] for item in body["items"]]
            cursors[sort] = body["next_cursor"] or False
        arrived.append(post(client))  # a new request between pages
    # Newest first: each old item exactly once; new arrivals sit before the cursor.
    assert seen_newest == list(reversed(created))
    # Oldest first (FIFO): old items once, in order, then the arrivals, none twice.
    assert len(seen_oldest) == len(set(seen_oldest))
    assert seen_oldest[: len(created)] == created
    assert set(seen_oldest[len(created) :]) <= set(arrived)


def test_a_cursor_from_another_sort_is_refused(client, coordinator: Caller):
    for _ in range(3):
        post(client)
    cursor = client.get(URL, query_string={"limit": 1}, headers=coordinator.headers).get_json()[
        "next_cursor"
    ]
    response = client.get(
        URL,
        query_string={"limit": 1, "sort": "oldest", "cursor": cursor},
        headers=coordinator.headers,
    )
    assert response.status_code == 422


# --- detail -------------------------------------------------------------------


def test_detail_shows_routing_notifications_and_timeline(client, app_context, coordinator):
    reference = post(client, destination="BE", condition="stroke", email="jan@example.org")
    pipeline.process_received(received_row(stored(reference)).id)

    response = client.get(f"{URL}/{reference}", headers=coordinator.headers)
    assert response.status_code == 200
    body = response.get_json()
    assert response.headers["ETag"] == f'"{body["version"]}"'
    assert body["reference"] == reference
    assert body["email"] == "jan@example.org"
    assert body["consent"]["privacy"] is True and body["consent"]["version"] >= 1
    decision = body["routing"]["decision"]
    assert decision["outcome"] == "routed"
    assert decision["provider_id"] == body["provider"]["id"]
    chosen = [c for c in decision["candidates"] if c["chosen"]]
    assert len(chosen) == 1 and chosen[0]["reasons"][-1].startswith("chosen")
    assert len(body["routing"]["history"]) == 1
    kinds = {n["kind"]: n for n in body["notifications"]}
    assert set(kinds) == {"acknowledgement", "provider"}
    assert kinds["acknowledgement"]["status"] == "pending"
    assert kinds["acknowledgement"]["disclaimers"]
    invited = len(body["invitations"])
    assert invited >= 1
    assert [(e["type"], e["actor"]) for e in body["timeline"]] == [
        ("received", "patient"),
        ("routed", "system"),
    ] + [("invitation_sent", "system")] * invited
    assert all({"type", "actor", "at", "note"} <= set(e) for e in body["timeline"])


def test_detail_reference_is_case_insensitive(client, coordinator):
    reference = post(client)
    response = client.get(f"{URL}/{reference.lower()}", headers=coordinator.headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [({"provider": 2**40}, "provider"), ({"assignee": "99999999999"}, "assignee")],
)
def test_ids_beyond_the_database_range_are_422(client, coordinator: Caller, params, field):
    response = client.get(URL, query_string=params, headers=coordinator.headers)
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
