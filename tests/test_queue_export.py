"""The queue as CSV: the list's filters, every row streamed, no message, the export audited."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient

from quote_service.api import queue_csv
from quote_service.extensions import db
from quote_service.models import AccessLog
from quote_service.services import queue
from tests.conftest import Caller
from tests.payloads import minimal_body
from tests.test_queue_api import URL, post

CSV = {"Accept": "text/csv"}


def rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_accept_text_csv_exports_every_matching_request_without_personal_text(
    client: FlaskClient, coordinator: Caller
):
    wanted = post(client, destination="BE", full_name="Zélie Marchand", message="Weak left arm.")
    post(client, destination="AG")
    response = client.get(
        URL, query_string={"destination": "BE"}, headers=coordinator.headers | CSV
    )
    exported = rows(response)
    assert [row["reference"] for row in exported] == [wanted]
    [row] = exported
    assert row["status"] == "received" and row["destination"] == "BE"
    assert row["condition"] == minimal_body()["condition"]
    assert list(row) == list(queue_csv.COLUMNS)
    body = response.get_data(as_text=True)
    for private in ("Zélie", "Marchand", "Weak left arm", "@example.org"):
        assert private not in body
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"


def test_format_csv_pages_through_the_whole_queue_in_batches(
    client: FlaskClient, coordinator: Caller, monkeypatch: pytest.MonkeyPatch
):
    made = [post(client) for _ in range(5)]
    monkeypatch.setattr(queue, "EXPORT_BATCH", 2)  # three round trips for five rows
    response = client.get(
        URL,
        query_string={"format": "csv", "sort": "oldest", "limit": 1},
        headers=coordinator.headers,
    )
    # `limit` pages the JSON list; the export has every row, oldest first.
    assert [row["reference"] for row in rows(response)] == made


def test_the_export_is_in_the_access_log_with_its_filters_but_not_the_search(
    client: FlaskClient, app_context: None, coordinator: Caller
):
    post(client, full_name="Ana Sousa")
    response = client.get(
        URL,
        query_string={"format": "csv", "q": "Sousa", "status": ["received"]},
        headers=coordinator.headers,
    )
    assert len(rows(response)) == 1
    [entry] = db.session.execute(
        db.select(AccessLog).where(AccessLog.action == "export_queue")
    ).scalars()
    assert entry.actor == f"user:{coordinator.email}" and entry.user_id == coordinator.id
    assert entry.detail == {
        "filters": {"q": "(a search)", "status": ["received"], "sort": "newest"},
        "format": "csv",
    }
    assert "Sousa" not in str(entry.detail)


def test_json_stays_the_default_and_a_bad_format_is_named(
    client: FlaskClient, app_context: None, coordinator: Caller
):
    post(client)
    listed = client.get(URL, headers=coordinator.headers | {"Accept": "*/*"})
    assert listed.mimetype == "application/json" and len(listed.get_json()["items"]) == 1
    refused = client.get(URL, query_string={"format": "xml"}, headers=coordinator.headers)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "validation_error"
    assert "format" in refused.get_json()["error"]["fields"]
    assert db.session.execute(db.select(db.func.count(AccessLog.id))).scalar() == 0


def test_an_export_needs_a_coordinators_token(client: FlaskClient):
    response = client.get(URL, headers=CSV)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_cell_a_spreadsheet_would_compute_is_written_as_text():
    assert queue_csv._cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert queue_csv._cell("+32 2 555 0100") == "'+32 2 555 0100"
    assert queue_csv._cell("QR-ABCD2345") == "QR-ABCD2345"
    assert queue_csv._cell(None) == ""


def test_the_openapi_documents_the_csv_answer_beside_the_json_page(client: FlaskClient):
    # A client (or a fuzzer) asking for CSV gets a content type the document names.
    ok = client.get("/openapi.json").get_json()["paths"][URL]["get"]["responses"]["200"]
    assert set(ok["content"]) == {"application/json", queue_csv.CSV_TYPE}
    assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/QueuePage")
