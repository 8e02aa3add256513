"""Rendering email templates (Jinja2) into MIME messages."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from quote_service.addresses import envelope

PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "email"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=8)
def environment(override_dir: str | None = None) -> jinja2.Environment:
    """Templates from `override_dir` first (deployments may restyle), then the package's.

    Cached: an Environment compiles each template once and keeps it, and
    building a new one per email made rendering the worker's largest cost.
    """
    loaders: list[jinja2.BaseLoader] = []
    if override_dir:
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.FileSystemLoader(str(PACKAGE_TEMPLATES)))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(env: jinja2.Environment, kind: str, language: str, context: dict[str, Any]) -> Rendered:
    """Render `{kind}.{language}.subject/txt/html.j2`."""
    subject = env.get_template(f"{kind}.{language}.subject.j2").render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        text=env.get_template(f"{kind}.{language}.txt.j2").render(context),
        html=env.get_template(f"{kind}.{language}.html.j2").render(context),
    )


def build_message(
    sender: str, recipient: str, rendered: Rendered, reply_to: str | None = None
) -> EmailMessage:
    """A multipart/alternative message with a fresh Message-ID.

    The `To` header carries the recipient's domain in its ASCII (IDNA) form;
    a local part that is not ASCII is written as UTF-8, which only a server
    offering SMTPUTF8 takes (the sender checks). ValueError if `recipient`
    is not an address at all.
    """
    to = envelope(recipient)
    message = EmailMessage(policy=SMTPUTF8 if to.smtputf8 else SMTP)
    message["From"] = sender
    if to.smtputf8:
        # Built from its parts: parsing a UTF-8 local part from one string is refused.
        local_part, _, domain = to.address.rpartition("@")
        message["To"] = Address(username=local_part, domain=domain)
    else:
        message["To"] = Address(addr_spec=to.address)
    if reply_to:
        # Replies from patients and clinics reach the coordinators, not no-reply.
        message["Reply-To"] = reply_to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "quote-service.invalid"
    message["Message-ID"] = make_msgid(domain=domain)
    # Quoted-printable keeps the message 7-bit: any relay accepts it, and the
    # bytes stored for a retry are plain ASCII.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message


def body_sha256(raw: bytes) -> str:
    """The SHA-256 of a message as serialised once (`as_bytes`), the bytes that are sent."""
    return hashlib.sha256(raw).hexdigest()
