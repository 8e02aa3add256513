"""GET /users and /me: the people who work the queue."""

from __future__ import annotations

import marshmallow as ma

from quote_service.schemas.base import StrictSchema


class UserQuerySchema(StrictSchema):
    active = ma.fields.Boolean(
        metadata={"description": "`true`: only users whose token is valid now."}
    )


class UserSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String(allow_none=True, metadata={"description": "The display name."})
    email = ma.fields.String()
    role = ma.fields.String(metadata={"description": "`coordinator` or `admin`."})
    active = ma.fields.Boolean(metadata={"description": "Not revoked and not expired."})


class UserListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UserSchema))
