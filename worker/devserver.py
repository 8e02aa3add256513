"""`make run`: the API on http://127.0.0.1:5000 with a worker in the same process.

With no REDIS_URL the broker is Celery's in-memory transport, so the worker
(and its outbox relay) runs in a thread beside the API; with no SMTP_HOST
every email is written as an `.eml` file under instance/mail/.
"""

from __future__ import annotations

import click
from celery.contrib.testing.worker import start_worker

from quote_service.services.passwords import issue_demo_password
from quote_service.services.users import DEMO_ADMIN_EMAIL, issue_demo_token
from worker import celery, flask_app

HOST = "127.0.0.1"
PORT = 5000


def main() -> None:
    base = f"http://{HOST}:{PORT}"
    click.echo(f"API       {base}/api/v1/catalog")
    click.echo(f"Docs      {base}/docs  (OpenAPI: {base}/openapi.json)")
    click.echo(f"Database  {flask_app.config['SQLALCHEMY_DATABASE_URI']}")
    if flask_app.config["SMTP_HOST"]:
        click.echo(
            f"Mail      smtp://{flask_app.config['SMTP_HOST']}:{flask_app.config['SMTP_PORT']}"
        )
    else:
        click.echo(f"Mail      {flask_app.config['MAIL_DIR']}  (one .eml file per email)")
    with flask_app.app_context():
        token = issue_demo_token()
        password = issue_demo_password(DEMO_ADMIN_EMAIL)
    click.echo(f"Token     {token}")
    click.echo(
        f"          (demo admin; try: curl -H 'Authorization: Bearer {token}' "
        f"{base}/api/v1/quote-requests)"
    )
    click.echo(f"Console   {base}/console/")
    click.echo(f"          sign in as {DEMO_ADMIN_EMAIL} with the password {password}")
    click.echo("          (both made fresh at each start)")
    with start_worker(celery, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        flask_app.run(host=HOST, port=PORT, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
