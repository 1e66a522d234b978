"""A change of address: a link mailed to the new one, which makes it the account's when it is
opened in a browser signed in to that account; and a link mailed to the old one, which undoes
the change for a week (GitHub and Google do the same): the address comes back, every session
ends, and its owner chooses a new password, since whoever moved it may know the old one."""

from __future__ import annotations

import peewee
from flask import url_for

from app import audit, links, mail, settings, words
from app.config import UNDO_EMAIL_TTL, VERIFY_TTL
from app.db import write_transaction
from app.models import LinkToken, User
from app.recovery import described, notice, within_budget
from app.sessions import rules, store


def request_email_change(user_id: int, new_email: str, *, now: float, ip: str,
                         user_agent: str) -> None:
    """Mail a confirmation link to the new address; the old one stays until it is used.

    An address that has an account is answered, and shown as waiting on the account page,
    like any other (else any signed-in person could probe which addresses have accounts):
    its change is recorded as pending with a link that is mailed to nobody, so it never
    completes, and its owner is not told who asked."""
    with write_transaction():
        user = User.get_by_id(user_id)
        if not within_budget("new_email", user.id, now, recipient=new_email):
            return  # the form answers the same: nobody floods an address through it
        token = links.issue(links.NEW_EMAIL, user.id, ttl=VERIFY_TTL, now=now, email=new_email)
        if User.select().where(User.email == new_email).exists():
            return
        mail.queue(new_email, "verify", "Confirm your new email address", now=now,
                   url=mail.link(url_for("account.confirm_email", _anchor=token)), change=True,
                   valid_for=words.duration(VERIFY_TTL), **described(now, ip, user_agent))


def pending(user_id: int, now: float) -> LinkToken | None:
    """The newest change of address still waiting for its link, if any (``email``: where)."""
    return (LinkToken.select()
            .where(LinkToken.user == user_id, LinkToken.purpose == links.NEW_EMAIL,
                   LinkToken.used_at.is_null(), LinkToken.expires_at > now)
            .order_by(LinkToken.created_at.desc(), LinkToken.id.desc()).first())


class AddressTaken(links.LinkError):
    message = "That address now belongs to another account, so it cannot be yours as well."


def confirm_email_change(token: str, *, now: float, ip: str, user_agent: str) -> User:
    """Make the link's address the account's, and mail the old one a way back."""
    try:
        with write_transaction():
            row = links.use(token, links.NEW_EMAIL, now=now)
            old = User.get_by_id(row.user_id).email
            store.set_email(row.user_id, row.email, now=now)
            links.retire_after_address_change(row.user_id, now=now)
            audit.record(audit.EMAIL_CHANGED, user=row.user_id, ip=ip, now=now)
            undo = links.issue(links.UNDO_EMAIL, row.user_id, ttl=UNDO_EMAIL_TTL, now=now,
                               email=old)
            # No reset button: resets now go to the new address.
            notice(old, "email_changed", now=now, ip=ip, user_agent=user_agent, old=old,
                   new=row.email, forgot=False, valid_for=words.duration(UNDO_EMAIL_TTL),
                   undo_url=mail.link(url_for("account.undo_email", _anchor=undo)))
    except peewee.IntegrityError:
        raise AddressTaken() from None
    return User.get_by_id(row.user_id)


def undo_email_change(token: str, *, now: float, ip: str) -> tuple[User, str]:
    """Put the old address back, end every session, stop the password; return the account
    and a reset token for its new password. A later change's way back dies with it (the
    earliest address wins); a pending change, a reset link and the like die too."""
    try:
        with write_transaction():
            row = links.use(token, links.UNDO_EMAIL, now=now)
            store.set_email(row.user_id, row.email, now=now)
            LinkToken.update(used_at=now).where(
                LinkToken.user == row.user_id, LinkToken.purpose == links.UNDO_EMAIL,
                LinkToken.used_at.is_null(), LinkToken.created_at >= row.created_at).execute()
            links.retire_after_address_change(row.user_id, now=now)
            store.revoke_all(row.user_id, reason=rules.EMAIL_RESTORED, now=now, ip_address=ip)
            User.update(password_blocked_at=now).where(User.id == row.user_id).execute()
            audit.record(audit.EMAIL_RESTORED, user=row.user_id, ip=ip, now=now)
            reset = links.issue(links.RESET, row.user_id, now=now,
                                ttl=settings.current().password_reset_ttl)
    except peewee.IntegrityError:
        raise AddressTaken() from None
    return User.get_by_id(row.user_id), reset
