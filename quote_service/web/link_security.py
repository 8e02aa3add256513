"""Headers of every page reached by a link whose token is the only credential.

Unlike the form's pages, these never send a referrer (the token is in the
address), are never cached, and may not be framed.
"""

from __future__ import annotations

from flask import Response

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def secure_headers(response: Response) -> Response:
    """No referrer (the token must not leak to another site), no cache, a strict CSP."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
