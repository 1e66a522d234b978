"""Email addresses, parsed by a real RFC 5321/5322 parser (``email-validator``), pure.

A regular expression once let ``x@[evil.example`` through, which the standard library's mail
classes cannot even build a message for: nothing may be stored that a mail cannot be sent to.
Bracketed IP addresses and non-ASCII characters before the ``@`` are refused (not every mail
server takes them); ``.test`` and ``.example`` domains are accepted, for testing.
"""

from __future__ import annotations

import unicodedata

import email_validator

EMAIL_MAX = 254


class InvalidEmail(ValueError):
    """Not an email address we can accept; the message is for the person."""


def _parsed(email: str) -> email_validator.ValidatedEmail:
    try:
        return email_validator.validate_email(
            email, check_deliverability=False, allow_smtputf8=False, test_environment=True)
    except email_validator.EmailNotValidError:
        raise InvalidEmail("Enter a valid email address.") from None


def normalise_email(email: str) -> str:
    """The address as accounts are keyed by: NFC, lower case, and well formed."""
    email = unicodedata.normalize("NFC", email.strip()).lower()
    if len(email) > EMAIL_MAX:
        raise InvalidEmail("Enter a valid email address.")
    return unicodedata.normalize("NFC", _parsed(email).normalized).lower()


def mailbox(email: str) -> str:
    """The ASCII form a mail is addressed with (an internationalised domain as IDNA)."""
    ascii_email = _parsed(email).ascii_email
    assert ascii_email is not None  # allow_smtputf8=False guarantees one
    return ascii_email
