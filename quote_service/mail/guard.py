"""The disclaimer guard: no acknowledgement leaves without every required disclaimer."""

from __future__ import annotations

from collections.abc import Iterable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from markupsafe import escape

from quote_service.models import Disclaimer


def missing_disclaimers(raw: bytes, disclaimers: Iterable[Disclaimer]) -> list[str]:
    """Keys of the disclaimers whose exact text is not in both parts of the message.

    The check reads the message as it will be sent (parsed back from its
    bytes), so no template, wrapping or encoding step can drop a disclaimer
    unnoticed. The plain-text part must hold each text on a line of its own;
    the HTML part must hold it escaped exactly as Jinja2 escapes it.
    """
    disclaimers = list(disclaimers)
    if not disclaimers:
        return []  # nothing required (a clinic's invitation, an alert): no parse
    message = message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    text_part = message.get_body(("plain",))
    html_part = message.get_body(("html",))
    text_lines = (
        {line.strip() for line in text_part.get_content().splitlines()} if text_part else set()
    )
    html = html_part.get_content() if html_part else ""
    missing = []
    for disclaimer in disclaimers:
        in_text = disclaimer.text.strip() in text_lines
        in_html = str(escape(disclaimer.text.strip())) in html
        if not (in_text and in_html):
            missing.append(disclaimer.key)
    return missing
