"""What every request is checked for before any view (or the rate limiter) sees it.

- The client address. Behind TRUSTED_PROXY_COUNT proxies it is read from
  X-Forwarded-For (ProxyFix). That header is whatever the client sent unless
  a proxy of ours wrote it, so a count higher than the proxies really in
  front lets any client choose its address, and its rate-limit bucket. A
  value there that is not an IP address is refused (400): our proxies only
  ever write addresses.
- The body size of a chunked request (no Content-Length). Werkzeug reads
  such a body only up to MAX_CONTENT_LENGTH and stops there without a word,
  so a view would parse a truncated body (a 400 "Invalid JSON body") instead
  of answering the 413 the contract promises.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, current_app, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from quote_service.errors import ServiceError


class InvalidClientAddress(ServiceError):
    status = 400
    code = "invalid_client_address"


def init_app(app: Flask) -> None:
    count = app.config["TRUSTED_PROXY_COUNT"]
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
        app.before_request(refuse_forged_client_address)
    app.before_request(refuse_oversized_chunked_body)


def refuse_forged_client_address() -> None:
    address = request.remote_addr
    if address is None:
        return  # a Unix socket: no address to check
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise InvalidClientAddress(
            _l("The forwarded client address is not an IP address.")
        ) from None


def refuse_oversized_chunked_body() -> None:
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return  # a Content-Length over the limit is refused by Werkzeug itself
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if limit is None:
        return
    body = request.get_data(cache=True)  # at most `limit` bytes
    if len(body) < limit:
        return
    try:
        more = request.environ["wsgi.input"].read(1)
    except OSError:
        raise ClientDisconnected() from None
    if more:
        raise RequestEntityTooLarge()
