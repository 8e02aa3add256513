"""`make run`: the API on http://127.0.0.1:5000 with a worker in the same process.

With no REDIS_URL the broker is Celery's in-memory transport, so the worker
(and its outbox relay) runs in a thread beside the API; with no SMTP_HOST
every email is written as an `.eml` file under instance/mail/. The example
website form (examples/form/) is served on http://127.0.0.1:8000, an origin
`make run` lets into the API (CORS_ORIGINS), so it works as it would on a
real website.
"""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
from celery.contrib.testing.worker import start_worker
from werkzeug.serving import run_simple

from quote_service.services.demo import TOKENS_FILE, demo_tokens
from quote_service.services.passwords import issue_demo_password
from worker import celery, flask_app

HOST = "127.0.0.1"
PORT = 5000
EXAMPLE_FORM_PORT = 8000
EXAMPLE_FORM_DIR = Path(__file__).resolve().parent.parent / "examples" / "form"


class QuietFiles(SimpleHTTPRequestHandler):
    """The example form's files, without an access line per file in the log."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_example_form() -> str | None:
    """Serve examples/form/ in a thread; its URL, or None when the port is taken."""
    try:
        server = ThreadingHTTPServer(
            (HOST, EXAMPLE_FORM_PORT), partial(QuietFiles, directory=str(EXAMPLE_FORM_DIR))
        )
    except OSError:
        return None
    threading.Thread(target=server.serve_forever, name="example-form", daemon=True).start()
    return f"http://{HOST}:{EXAMPLE_FORM_PORT}/"


def main() -> None:
    base = f"http://{HOST}:{PORT}"
    click.echo(f"Home      {base}/  (the hosted form: {base}/form)")
    click.echo(f"API       {base}/api/v1/catalog")
    click.echo(f"Docs      {base}/docs  (OpenAPI: {base}/openapi.json)")
    example = serve_example_form()
    if example is None:
        click.echo(f"Example   port {EXAMPLE_FORM_PORT} is taken: serve examples/form/ yourself")
    else:
        allowed = ", ".join(flask_app.config["CORS_ORIGINS"]) or "none"
        click.echo(f"Example   {example}  (examples/form/; CORS_ORIGINS: {allowed})")
    click.echo(f"Database  {flask_app.config['SQLALCHEMY_DATABASE_URI']}")
    if flask_app.config["SMTP_HOST"]:
        click.echo(
            f"Mail      smtp://{flask_app.config['SMTP_HOST']}:{flask_app.config['SMTP_PORT']}"
        )
    else:
        click.echo(f"Mail      {flask_app.config['MAIL_DIR']}  (one .eml file per email)")
    with flask_app.app_context():
        tokens = demo_tokens(flask_app.instance_path)
        admin = next(demo for demo in tokens if demo.role == "admin")
        password = issue_demo_password(admin.email)
    for position, demo in enumerate(tokens):
        label = "Tokens" if position == 0 else ""
        click.echo(f"{label:<10}{demo.role:<12} {demo.token}  ({demo.email})")
    coordinator = tokens[0].token
    click.echo(
        f"          (kept in instance/{TOKENS_FILE} across restarts; try: curl -H "
        f"'Authorization: Bearer {coordinator}' {base}/api/v1/quote-requests)"
    )
    click.echo(f"Console   {base}/console/")
    click.echo(f"          sign in as {admin.email} with the password {password}")
    click.echo("          (the password is made fresh at each start)")
    with start_worker(celery, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        # Werkzeug's server itself: Flask's app.run() prints a banner of its own,
        # outside the one log format.
        run_simple(HOST, PORT, flask_app, threaded=True)


if __name__ == "__main__":
    main()
