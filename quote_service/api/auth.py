"""Bearer-token authentication for the coordinators' endpoints."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from quote_service.errors import Forbidden, Unauthorized
from quote_service.models import User
from quote_service.services.users import actor_of, authenticate

View = TypeVar("View", bound=Callable[..., Any])

# OpenAPI security schemes: both are bearer tokens; the second names the
# endpoints only an admin's token opens.
COORDINATOR = [{"coordinatorToken": []}]
ADMIN = [{"adminToken": []}]
SECURITY_SCHEMES = {
    "coordinatorToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A coordinator's or an admin's token (`flask users create`).",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An admin's token; a coordinator's token gets 403.",
    },
}


def current_user() -> User:
    return g.user


def actor() -> str:
    """How the timeline names the current user."""
    return actor_of(g.user)


def requires(role: str = "coordinator") -> Callable[[View], View]:
    """Let in a valid, unrevoked token; `admin` endpoints only an admin's."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthorized("Send an API token: Authorization: Bearer <token>.")
            user = authenticate(token.strip())
            if user is None:
                raise Unauthorized("This token is not valid, or has been revoked.")
            if role == "admin" and not user.is_admin:
                raise Forbidden("Only an admin may do this.")
            g.user = user
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator
