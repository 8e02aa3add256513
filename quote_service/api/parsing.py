"""Request parsing for our blueprints: JSON or HTML form bodies, refused cleanly."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

FORM_MIMETYPE = "application/x-www-form-urlencoded"


class Parser(FlaskParser):
    """webargs' Flask parser, hardened for untrusted bodies.

    - `json_or_form` takes JSON or a urlencoded form and answers 415 for any
      other body, instead of silently reading an empty form.
    - JSON nested deeper than Python's recursion limit is a 400, not a 500.
    """

    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            abort(400, messages={"json": ["The JSON body is nested too deeply."]})

    def load_json_or_form(self, req: flask.Request, schema: ma.Schema) -> Any:
        if is_json_request(req):
            data = self.load_json(req, schema)
            # An empty JSON body is an empty object: every required field missing.
            return {} if data is core.missing else data
        if req.mimetype == FORM_MIMETYPE:
            return self.load_form(req, schema)
        if not req.mimetype and not req.get_data(cache=True):
            return {}
        abort(415)


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = Parser()
    # Documented as JSON; the form alternative is added per operation.
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {
        **flask_smorest.Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "json_or_form": "application/json",
    }
