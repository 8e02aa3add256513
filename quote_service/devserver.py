"""`make run`: the API on http://127.0.0.1:5000 for a newcomer to try at once."""

from __future__ import annotations

import click

from quote_service import create_app

HOST = "127.0.0.1"
PORT = 5000


def main() -> None:
    app = create_app()
    base = f"http://{HOST}:{PORT}"
    click.echo(f"API       {base}/api/v1/catalog")
    click.echo(f"Docs      {base}/docs  (OpenAPI: {base}/openapi.json)")
    click.echo(f"Database  {app.config['SQLALCHEMY_DATABASE_URI']}")
    click.echo(f"Mail      {app.config['MAIL_DIR']}")
    app.run(host=HOST, port=PORT, debug=False, use_reloader=False)


if __name__ == "__main__":
    main()
