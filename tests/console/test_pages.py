"""Console pages with the Flask test client: each page's bad inputs, roles, CSRF, headers,
and the actions' answers (the browser tests drive the same pages end to end)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from quote_service.extensions import db
from quote_service.models import Provider, QuoteRequest
from tests.console.support import page_token, person, providers_restored, routed, sign_in

COORDINATOR = "cora@quote-service.example"
ADMIN = "adam@quote-service.example"


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient) -> FlaskClient:
    person(app, COORDINATOR)
    assert sign_in(client, COORDINATOR).status_code == 303
    return client


@pytest.fixture
def admin_client(app: Flask, client: FlaskClient) -> Iterator[FlaskClient]:
    person(app, ADMIN, "admin")
    assert sign_in(client, ADMIN).status_code == 303
    with providers_restored(app):
        yield client


def state(app: Flask, reference: str) -> tuple[str, int, int | None]:
    with app.app_context():
        row = db.session.execute(
            db.select(QuoteRequest).where(QuoteRequest.reference == reference)
        ).scalar_one()
        db.session.remove()
        return row.status, row.version, row.assignee_id


def post(client: FlaskClient, reference: str, action: str, **data: str):
    token = page_token(client.get(f"/console/requests/{reference}").text)
    return client.post(
        f"/console/requests/{reference}/{action}", data={"csrf_token": token, **data}
    )


def test_every_page_needs_a_session(client: FlaskClient):
    for path in ("/console/", "/console/statistics", "/console/requests/QR-A", "/console/clinics"):
        response = client.get(path)
        assert response.status_code in (302, 303), path
        assert response.headers["Location"].startswith("/console/login"), path


def test_every_page_sends_a_policy_without_inline_scripts(app: Flask, admin_client: FlaskClient):
    reference = routed(app, admin_client)
    with app.app_context():
        provider_id = db.session.execute(db.select(Provider.id)).scalars().first()
    for path in (
        "/console/login",
        "/console/",
        f"/console/requests/{reference}",
        "/console/statistics",
        "/console/clinics",
        f"/console/clinics/{provider_id}",
        "/console/access-log",
        "/console/requests/QR-AAAAAAAA",  # an error page too
    ):
        response = admin_client.get(path)
        policy = response.headers["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", policy).group(1)
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src, path
        assert response.headers["Cache-Control"] == "no-store", path
        assert "<script>" not in response.text, path  # every script is a file


def test_the_queue_lists_requests_with_links_and_columns(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in)
    html = signed_in.get("/console/").text
    assert f'href="/console/requests/{reference}"' in html
    row = re.search(rf'data-reference="{reference}">(.*?)</tr>', html, re.S).group(1)
    for text in ("routed", "BE", "stroke", "unassigned", "left"):
        assert text in row


def test_saved_views_show_counts_and_filter(app: Flask, signed_in: FlaskClient):
    routed(app, signed_in)
    html = signed_in.get("/console/").text
    counts = dict(re.findall(r'data-view="([a-z-]+)"[^>]*>[^<]*<span[^>]*data-count>(\d+)', html))
    assert counts["new"] == "1" and counts["unassigned"] == "1" and counts["mine"] == "0"
    assert counts["unroutable"] == "0" and counts["past-sla"] == "0" and counts["urgent"] == "0"
    mine = signed_in.get("/console/?view=mine").text
    assert "No request matches." in mine


BAD_FILTERS = [
    ("status=nonsense", "status"),
    ("cursor=garbage", "cursor"),
    ("created_after=yesterday", "created_after"),
    ("limit=1000", "limit"),
    ("assignee=someone", "assignee"),
    ("colour=blue", "colour"),
    ("sort=sideways", "sort"),
]


def test_bad_queue_filters_are_a_422_naming_them(signed_in: FlaskClient):
    for query, field in BAD_FILTERS:
        response = signed_in.get(f"/console/?{query}")
        assert response.status_code == 422, query
        assert f'href="#{field}"' in response.text, query


def test_filters_search_and_keyset_paging(app: Flask, signed_in: FlaskClient):
    references = [
        routed(app, signed_in, full_name=f"Patient {n}", email=f"p{n}@example.org")
        for n in range(3)
    ]
    first = signed_in.get("/console/?limit=2&destination=BE").text
    assert rows(first) == [references[2], references[1]]
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert rows(signed_in.get(next_url).text) == [references[0]]
    assert rows(signed_in.get("/console/?sort=oldest&limit=1").text) == [references[0]]
    assert rows(signed_in.get("/console/?q=Patient+1").text) == [references[1]]
    assert rows(signed_in.get(f"/console/?q={references[1].lower()}").text) == [references[1]]
    assert rows(signed_in.get("/console/?destination=AG").text) == []


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-queue-row data-reference="([A-Z0-9-]+)"', html)


def test_the_live_count_says_how_many_arrived_since(app: Flask, signed_in: FlaskClient):
    page = signed_in.get("/console/").text
    live = re.search(r'hx-get="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "new: refresh" not in signed_in.get(live).text
    routed(app, signed_in)
    routed(app, signed_in, email="other@example.org")
    assert "2 new: refresh" in signed_in.get(live).text
    bad = signed_in.get("/console/queue/live?since=never")
    assert bad.status_code == 422


def test_an_unknown_request_is_a_404_page(signed_in: FlaskClient):
    response = signed_in.get("/console/requests/QR-AAAAAAAA")
    assert response.status_code == 404
    assert "No quote request QR-AAAAAAAA" in response.text


def test_the_detail_shows_the_decrypted_request_and_only_allowed_moves(
    app: Flask, signed_in: FlaskClient
):
    reference = routed(app, signed_in, message="Left side weak since March.")
    html = signed_in.get(f"/console/requests/{reference}").text
    assert "Left side weak since March." in html
    assert "marie.dubois@example.org" in html
    moves = re.search(r'<select id="to" name="to">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'value="([a-z_]+)"', moves) == ["in_review", "rejected", "withdrawn", "spam"]
    assert "Every clinic considered" in html and "chosen" in html
    assert "acknowledgement" in html and "provider" in html  # the emails


def test_actions_change_the_request_and_redirect(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in)
    _, version, _ = state(app, reference)
    response = post(signed_in, reference, "transitions", to="in_review", version=str(version))
    assert response.status_code == 303
    assert state(app, reference)[0] == "in_review"
    response = post(signed_in, reference, "assignment", assignee="me", version=str(version + 1))
    assert response.status_code == 303 and state(app, reference)[2] is not None
    assert post(signed_in, reference, "notes", note="Called the clinic.").status_code == 303
    page = signed_in.get(f"/console/requests/{reference}").text
    assert "Called the clinic." in page and f'id="assignee-now">{COORDINATOR}' in page


def test_closing_from_the_console_takes_an_outcome(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in)
    for to in ("in_review", "quoted"):
        _, version, _ = state(app, reference)
        assert (
            post(signed_in, reference, "transitions", to=to, version=str(version)).status_code
            == 303
        )
    _, version, _ = state(app, reference)
    missing = post(signed_in, reference, "transitions", to="closed", version=str(version))
    assert missing.status_code == 422
    assert "Say how it ended" in missing.text and 'aria-describedby="outcome-error"' in missing.text
    assert state(app, reference)[0] == "quoted"
    closed = post(
        signed_in, reference, "transitions", to="closed", outcome="booked", version=str(version)
    )
    assert closed.status_code == 303
    assert state(app, reference)[0] == "closed"
    assert "outcome booked" in signed_in.get(f"/console/requests/{reference}").text


BAD_ACTIONS = [
    ("transitions", {"to": "closed"}, 409, "cannot go from routed to closed"),
    ("transitions", {"to": "flying"}, 422, "Must be one of"),
    ("transitions", {"to": "in_review", "version": ""}, 422, "lost its version"),
    ("transitions", {"to": "in_review", "version": "two"}, 422, "whole number"),
    ("transitions", {"to": "in_review", "note": "x" * 5001}, 422, "between 1 and 5000"),
    ("notes", {"note": ""}, 422, "required"),
    ("notes", {"note": "a\x00b"}, 422, "control characters"),
    ("assignment", {"assignee": "somebody"}, 422, "Use me, a user id"),
    ("assignment", {"assignee": "999999"}, 422, "No active user"),
    ("route", {"provider_id": "999999"}, 422, "No provider with this id"),
    ("route", {"provider_id": "x"}, 422, "whole number"),
]


def test_bad_actions_are_refused_with_a_message_and_change_nothing(
    app: Flask, signed_in: FlaskClient
):
    reference = routed(app, signed_in)
    before = state(app, reference)
    for action, data, status, says in BAD_ACTIONS:
        response = post(signed_in, reference, action, **{"version": str(before[1]), **data})
        assert response.status_code == status, (action, data)
        assert says in response.text, (action, data)
        assert state(app, reference) == before


def test_a_stale_action_says_what_changed_and_shows_the_new_state(
    app: Flask, signed_in: FlaskClient
):
    reference = routed(app, signed_in)
    page = signed_in.get(f"/console/requests/{reference}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    seen = re.search(r'name="seen_event" value="(\d+)"', page).group(1)
    token = page_token(page)
    form = {"csrf_token": token, "version": version, "seen_event": seen}
    url = f"/console/requests/{reference}"
    assert signed_in.post(f"{url}/transitions", data={**form, "to": "in_review"}).status_code == 303
    stale = signed_in.post(f"{url}/assignment", data={**form, "assignee": "me"})
    assert stale.status_code == 409
    message = re.search(r'<div class="stale".*?</div>', stale.text, re.S).group(0)
    assert "moved it to in_review" in message and "version 2" in message
    assert '<span class="status">in_review</span>' in stale.text  # the new state
    assert state(app, reference)[2] is None  # not assigned


def test_a_post_without_the_csrf_token_changes_nothing(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in)
    before = state(app, reference)
    for action, data in (
        ("transitions", {"to": "in_review", "version": str(before[1])}),
        ("notes", {"note": "sneaky"}),
        ("assignment", {"assignee": "me", "version": str(before[1])}),
    ):
        response = signed_in.post(f"/console/requests/{reference}/{action}", data=data)
        assert response.status_code == 400
        assert "cannot be accepted" in response.text
        bad = signed_in.post(
            f"/console/requests/{reference}/{action}", data={**data, "csrf_token": "forged"}
        )
        assert bad.status_code == 400
    assert state(app, reference) == before
    assert "sneaky" not in signed_in.get(f"/console/requests/{reference}").text


def test_resend_needs_a_first_acknowledgement(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in)
    response = post(signed_in, reference, "acknowledgement")
    assert response.status_code in (303, 409)


def test_clinic_pages_are_for_admins(app: Flask, signed_in: FlaskClient):
    assert signed_in.get("/console/clinics").status_code == 403
    with app.app_context():
        provider_id = db.session.execute(db.select(Provider.id)).scalars().first()
    token = page_token(signed_in.get("/console/").text)
    response = signed_in.post(
        f"/console/clinics/{provider_id}",
        data={"csrf_token": token, "daily_capacity": "1", "weight": "1", "languages": "en"},
    )
    assert response.status_code == 403


def test_an_admin_edits_a_clinic_through_the_providers_service(
    app: Flask, admin_client: FlaskClient
):
    with app.app_context():
        provider = db.session.execute(db.select(Provider).order_by(Provider.id)).scalars().first()
        provider_id, name = provider.id, provider.name
    listing = admin_client.get("/console/clinics").text
    assert name in listing
    url = f"/console/clinics/{provider_id}"
    token = page_token(admin_client.get(url).text)
    form = {"csrf_token": token, "daily_capacity": "7", "weight": "3", "languages": ["en", "fr"]}
    assert admin_client.post(url, data=form).status_code == 303
    with app.app_context():
        saved = db.session.get(Provider, provider_id)
        assert (saved.daily_capacity, saved.weight, saved.languages, saved.active) == (
            7,
            3,
            ["en", "fr"],
            False,  # the box was not ticked
        )


BAD_CLINIC_EDITS = [
    ({"daily_capacity": "-1", "weight": "1", "languages": "en"}, "daily_capacity"),
    ({"daily_capacity": "many", "weight": "1", "languages": "en"}, "daily_capacity"),
    ({"daily_capacity": "1", "weight": "0", "languages": "en"}, "weight"),
    ({"daily_capacity": "1", "weight": "1"}, "languages"),
    ({"daily_capacity": "1", "weight": "1", "languages": "xx"}, "languages"),
]


def test_bad_clinic_edits_are_a_422_and_change_nothing(app: Flask, admin_client: FlaskClient):
    with app.app_context():
        provider = db.session.execute(db.select(Provider).order_by(Provider.id)).scalars().first()
        provider_id, before = provider.id, (provider.daily_capacity, provider.weight)
    url = f"/console/clinics/{provider_id}"
    token = page_token(admin_client.get(url).text)
    for data, field in BAD_CLINIC_EDITS:
        response = admin_client.post(url, data={"csrf_token": token, **data})
        assert response.status_code == 422, data
        assert f'href="#{field}"' in response.text, data
    with app.app_context():
        saved = db.session.get(Provider, provider_id)
        assert (saved.daily_capacity, saved.weight) == before
    assert admin_client.get("/console/clinics/999999").status_code == 404


def test_the_statistics_page_draws_requests_per_day(app: Flask, signed_in: FlaskClient):
    routed(app, signed_in)
    html = signed_in.get("/console/statistics").text
    assert '<svg class="chart" id="daily-chart" role="img"' in html
    assert 'data-total="1"' in html and 'data-status="routed"' in html
    assert "Median time to the acknowledgement" in html


def test_viewers_appear_in_the_json_detail_and_queue(app: Flask, signed_in: FlaskClient):
    reference = routed(app, signed_in)
    signed_in.get(f"/console/requests/{reference}")  # the page counts as viewing
    api = make_token(app)
    detail = signed_in.get(f"/api/v1/quote-requests/{reference}", headers=api).get_json()
    assert [v["user"] for v in detail["viewers"]] == [COORDINATOR]
    assert detail["viewers"][0]["since"]
    items = signed_in.get("/api/v1/quote-requests", headers=api).get_json()["items"]
    assert [v["user"] for v in items[0]["viewers"]] == [COORDINATOR]


def make_token(app: Flask) -> dict[str, str]:
    from tests.conftest import make_user

    return make_user(app, "api.user@quote-service.example", "coordinator").headers


def test_the_access_log_is_for_admins_and_shows_reads(app: Flask, client: FlaskClient):
    person(app, COORDINATOR)
    person(app, ADMIN, "admin")
    sign_in(client, COORDINATOR)
    reference = routed(app, client)
    client.get(f"/console/requests/{reference}")
    assert client.get("/console/access-log").status_code == 403
    client.post("/console/logout", data={"csrf_token": page_token(client.get("/console/").text)})
    sign_in(client, ADMIN)
    page = client.get("/console/access-log").text
    assert f"user:{COORDINATOR}" in page and "read detail" in page
    assert client.get("/console/access-log?before=x").status_code == 422
