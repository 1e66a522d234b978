"""A change of address: a link mailed to the new one, which makes it the account's."""

from __future__ import annotations

import peewee
from flask import url_for

from app import audit, links, mail, words
from app.config import VERIFY_TTL
from app.db import write_transaction
from app.models import User
from app.recovery import described, notice
from app.sessions import store


def request_email_change(user_id: int, new_email: str, *, now: float, ip: str,
                         user_agent: str) -> None:
    """Mail a confirmation link to the new address; the old one stays until it is used."""
    with write_transaction():
        user = User.get_by_id(user_id)
        if User.select().where(User.email == new_email).exists():
            return  # answered like any other address; its owner is not told who asked
        token = links.issue(links.NEW_EMAIL, user.id, ttl=VERIFY_TTL, now=now, email=new_email)
        mail.queue(new_email, "verify", "Confirm your new email address", now=now,
                   url=mail.link(url_for("account.confirm_email", _anchor=token)), change=True,
                   valid_for=words.duration(VERIFY_TTL), **described(now, ip, user_agent))


class AddressTaken(links.LinkError):
    message = "That address now belongs to another account, so it cannot be yours as well."


def confirm_email_change(token: str, *, now: float, ip: str, user_agent: str) -> User:
    try:
        with write_transaction():
            row = links.use(token, links.NEW_EMAIL, now=now)
            old = User.get_by_id(row.user_id).email
            store.set_email(row.user_id, row.email, now=now)
            links.retire_after_credential_change(row.user_id, now=now)
            audit.record(audit.EMAIL_CHANGED, user=row.user_id, ip=ip, now=now)
            notice(old, "email_changed", now=now, ip=ip, user_agent=user_agent, old=old,
                   new=row.email)
    except peewee.IntegrityError:
        raise AddressTaken() from None
    return User.get_by_id(row.user_id)
