"""The people who work the queue: who they are (to assign to) and who am I."""

from __future__ import annotations

from typing import Any

from quote_service.api.auth import COORDINATOR, current_user, requires
from quote_service.api.parsing import Blueprint
from quote_service.models import User
from quote_service.schemas.users import UserListSchema, UserQuerySchema, UserSchema
from quote_service.services import users

blp = Blueprint(
    "users",
    __name__,
    url_prefix="/api/v1",
    description="Coordinators: the users of the queue (bearer token)",
)


@blp.route("/users")
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.arguments(UserQuerySchema, location="query")
@blp.response(200, UserListSchema)
def list_users(query: dict[str, Any]) -> dict[str, Any]:
    """Every coordinator and admin: name, email, role, active"""
    found = users.list_users()
    if "active" in query:
        found = [user for user in found if user.active == query["active"]]
    return {"items": found}


@blp.route("/me")
@blp.doc(security=COORDINATOR)
@requires("coordinator")
@blp.response(200, UserSchema)
def me() -> User:
    """The user this token belongs to"""
    return current_user()
