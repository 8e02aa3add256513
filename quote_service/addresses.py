"""Email addresses as mail servers and mailboxes see them.

An address is stored as the patient typed it, normalised by email-validator
(an internationalised domain stays in Unicode, so coordinators read it as
written). Two other forms derive from it:

- `envelope`: what goes into SMTP and the `To` header. The domain is always
  in its ASCII (IDNA) form, which every server accepts; a local part that is
  not ASCII (`jän@`, `josé@`, Cyrillic) can only travel with SMTPUTF8.
- `mailbox`: the address without its `+tag`, lower case. `jan+1@` and
  `jan+2@` reach one inbox, so limits that protect an inbox count on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import email_validator


@dataclass(frozen=True)
class Envelope:
    """The address to give the mail server, and whether it needs SMTPUTF8."""

    address: str
    smtputf8: bool


def envelope(address: str) -> Envelope:
    """The sendable form of a stored address; ValueError if it is not an address.

    An ASCII address is sent as it is, as it always was (the intake checked
    it; the coordinators' and clinics' addresses come from configuration and
    admins, and may well be on a `.local` domain).
    """
    if address.isascii():
        local_part, at, domain = address.rpartition("@")
        if not (local_part and at and domain):
            raise ValueError("not a sendable address: no local part and domain")
        return Envelope(address, smtputf8=False)
    try:
        result = email_validator.validate_email(
            address,
            check_deliverability=False,
            allow_smtputf8=True,
            allow_quoted_local=True,
            globally_deliverable=False,
        )
    except email_validator.EmailNotValidError as error:
        raise ValueError(f"not a sendable address: {error}") from None
    if result.ascii_email:
        return Envelope(result.ascii_email, smtputf8=False)
    # The local part is not ASCII: only the domain has an ASCII form.
    return Envelope(f"{result.local_part}@{result.ascii_domain}", smtputf8=True)


def mailbox(address: str) -> str:
    """The address without its `+tag`, lower case: what one inbox receives."""
    local, at, domain = address.strip().rpartition("@")
    if not at:
        return address.strip().lower()
    untagged = local.split("+", 1)[0] or local
    return f"{untagged}@{domain}".lower()


def domain_of(address: str) -> str:
    """The address's domain, lower case, as `@domain` (what a search for a domain types)."""
    return "@" + address.strip().rpartition("@")[2].lower()
