"""Single-use tokens for the links in mails: random, stored only as a hash, expiring, used once.

``check`` reads a token for the page a link opens (a GET changes nothing: mail scanners fetch
every link); ``use`` spends it on that page's POST with one conditional UPDATE, so of two
concurrent uses exactly one wins.
"""

from __future__ import annotations

import secrets

from app import tokens
from app.models import LinkToken

VERIFY, RESET, NOT_ME, NEW_EMAIL, UNLOCK = "verify", "reset", "not_me", "new_email", "unlock"
UNDO_EMAIL = "undo_email"  # mailed to the old address of a change; survives credential changes
TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 64  # anything longer was never issued; not worth hashing


class LinkError(Exception):
    """The link cannot be used; the message says why, for the page that explains it."""

    message = "This link is not valid. Check that it was copied completely."


class LinkExpired(LinkError):
    message = "This link has expired."


class LinkUsed(LinkError):
    message = "This link has already been used."


def issue(purpose: str, user_id: int, *, ttl: float, now: float, email: str = "",
          session_id: int | None = None) -> str:
    """Store a new token's hash and return the token (it exists only in the mail)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    LinkToken.create(token_hash=tokens.token_hash(token), purpose=purpose, user=user_id,
                     email=email, session=session_id, created_at=now, expires_at=now + ttl)
    return token


def check(token: str, purpose: str, *, now: float) -> LinkToken:
    """The token's row, if it can still be used; raises a ``LinkError`` saying why not."""
    row = _find(token, purpose)
    if row.used_at is not None:
        raise LinkUsed()
    if row.expires_at <= now:
        raise LinkExpired()
    return row


def use(token: str, purpose: str, *, now: float) -> LinkToken:
    """Spend the token (call inside the transaction of what it does); raises like ``check``."""
    row = check(token, purpose, now=now)
    spent = LinkToken.update(used_at=now).where(
        (LinkToken.id == row.id) & LinkToken.used_at.is_null()).execute()
    if spent != 1:
        raise LinkUsed()  # another request used it a moment ago
    return row


def retire_after_credential_change(user_id: int, *, now: float) -> None:
    """A password change, a reset or a new address: no link mailed before it may still act
    (a verification link included: the address is proven by then, or by the new one).

    A pending change of address would otherwise outlive the reset that locked its requester
    out, and a reset link mailed to an old address would outlive the change of address."""
    for purpose in (VERIFY, RESET, NEW_EMAIL):
        retire(user_id, purpose, now=now)


def retire_after_address_change(user_id: int, *, now: float) -> None:
    """A new address, or the old one back: besides what a credential change retires, every
    link that acts for whoever reads the mailbox it went to, since that mailbox may no longer
    be the account's. "This wasn't me" stops the password and hands on to a new one; an unlock
    link lifts the account's lockout. A password change or reset leaves them: the mailbox is
    the same, and a password changed by whoever signed in must not take its owner's way out.
    The way back of the change (``UNDO_EMAIL``) is the one link meant for the old address."""
    retire_after_credential_change(user_id, now=now)
    for purpose in (NOT_ME, UNLOCK):
        retire(user_id, purpose, now=now)


def retire(user_id: int, purpose: str, *, now: float) -> None:
    """Every unused token of this kind for this person stops working (a reset done, say)."""
    LinkToken.update(used_at=now).where(
        (LinkToken.user == user_id) & (LinkToken.purpose == purpose)
        & LinkToken.used_at.is_null()).execute()


def _find(token: str, purpose: str) -> LinkToken:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkError()
    row = LinkToken.get_or_none(LinkToken.token_hash == tokens.token_hash(token))
    if row is None or row.purpose != purpose:
        raise LinkError()
    return row
