"""The disclaimer guard reads the bytes as they will be sent, whatever their transfer encoding."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

import pytest
from markupsafe import escape

from quote_service.mail.guard import missing_disclaimers
from quote_service.mail.rendering import Rendered, build_message
from quote_service.models import Disclaimer

# Accents and a long line: quoted-printable encodes the one and wraps the other.
MEDICAL = (
    "Les traitements par cellules souches ne sont pas une thérapie éprouvée; "
    "parlez-en à votre médecin avant tout voyage, et n'arrêtez aucun traitement en cours."
)
LEGAL = "We facilitate & do not treat: the clinic alone is responsible for your care."


def disclaimer(key: str, text: str) -> Disclaimer:
    return Disclaimer(key=key, version=1, language="fr", text=text, required=True)


def message(text: str, html: str) -> bytes:
    rendered = Rendered(subject="Votre demande", text=text, html=html)
    return build_message("Quotes <quotes@example.org>", "jan@example.org", rendered).as_bytes()


def both_parts(*texts: str) -> bytes:
    return message(
        "Bonjour,\n\n" + "\n".join(texts) + "\n",
        "<p>Bonjour,</p>" + "".join(f"<p>{escape(t)}</p>" for t in texts),
    )


def test_disclaimers_in_both_parts_pass_through_quoted_printable():
    raw = both_parts(MEDICAL, LEGAL)
    assert b"=C3=A9" in raw  # the accents reached the bytes encoded
    assert (
        missing_disclaimers(raw, [disclaimer("medical", MEDICAL), disclaimer("legal", LEGAL)]) == []
    )


def test_a_disclaimer_missing_from_the_html_part_is_named():
    raw = message(f"Bonjour,\n{MEDICAL}\n{LEGAL}\n", f"<p>{escape(LEGAL)}</p>")
    required = [disclaimer("medical", MEDICAL), disclaimer("legal", LEGAL)]
    assert missing_disclaimers(raw, required) == ["medical"]


def test_a_disclaimer_missing_from_the_text_part_or_not_on_a_line_of_its_own_is_named():
    raw = message(
        f"Bonjour, {MEDICAL}\n{LEGAL}\n", f"<p>{escape(MEDICAL)}</p><p>{escape(LEGAL)}</p>"
    )
    assert missing_disclaimers(raw, [disclaimer("medical", MEDICAL)]) == ["medical"]


def test_html_must_carry_the_text_escaped_as_jinja_escapes_it():
    raw = message(f"{LEGAL}\n", f"<p>{LEGAL}</p>")  # the ampersand left raw
    assert missing_disclaimers(raw, [disclaimer("legal", LEGAL)]) == ["legal"]


@pytest.mark.parametrize("cte", ["base64", "8bit", "quoted-printable"])
def test_parts_in_any_transfer_encoding_are_read_decoded(cte):
    built = EmailMessage(policy=SMTP)
    built["From"], built["To"], built["Subject"] = "q@example.org", "jan@example.org", "x"
    built.set_content(f"Bonjour\n{MEDICAL}\n", cte=cte)
    built.add_alternative(f"<p>{escape(MEDICAL)}</p>", subtype="html", cte=cte)
    assert missing_disclaimers(built.as_bytes(), [disclaimer("medical", MEDICAL)]) == []


def test_an_attachment_does_not_stand_in_for_the_body():
    built = EmailMessage(policy=SMTP)
    built["From"], built["To"], built["Subject"] = "q@example.org", "jan@example.org", "x"
    built.set_content(f"<p>{escape(MEDICAL)}</p>", subtype="html")
    # The only plain text is an attached file: the message has no text part.
    built.add_attachment(f"{MEDICAL}\n", subtype="plain", filename="disclaimer.txt")
    assert missing_disclaimers(built.as_bytes(), [disclaimer("medical", MEDICAL)]) == ["medical"]


def test_nothing_required_needs_no_parse():
    assert missing_disclaimers(b"not a message at all", []) == []
