""""This wasn't me", from a new-sign-in mail. Its link names one session and acts on no other
unless the person ticks it: it ends that session, forgets the browser it came from, stops the
password that let it in (a sign-in with it is told to reset it), and hands on to choosing a new
one (the mailed link has just proven the mailbox). The page lists the person's other sessions,
each browser the account does not know ticked to be signed out as well."""

from __future__ import annotations

from dataclasses import dataclass, field

from app import audit, devices, links, settings
from app.db import write_transaction
from app.models import KnownDevice, LinkToken, LoginSession, User
from app.sessions import rules, store


@dataclass
class Listed:
    """A session on the page: its device as the person knows it, and whether to end it."""

    session: LoginSession
    device: str
    suggested: bool = False
    this: bool = False  # the browser reading the page


@dataclass
class Disowned:
    """What the page shows: the account, the session the mail was about, and the others."""

    user: User
    named: Listed
    live: bool
    others: list[Listed] = field(default_factory=list)


def device_of(session: LoginSession) -> str:
    """ "Work laptop (Firefox 128 on Ubuntu)", or the browser alone."""
    parsed = session.device_name or devices.describe(session.user_agent)
    name = devices.name_of(session.user_id, session.device_hash)
    return f"{name} ({parsed})" if name else parsed


def report(row: LinkToken, *, this_device: str, now: float) -> Disowned:
    """The page of the link ``row``, read by the browser whose device hash is
    ``this_device``. A session of a browser the account does not know is ticked (and so is one
    from the disowned browser while its session still runs); this browser's never is."""
    named = LoginSession.get_by_id(row.session_id)
    live = named.ended_at is None and named.absolute_expires_at > now
    known = {device.device_hash for device in KnownDevice.select(KnownDevice.device_hash)
             .where(KnownDevice.user == row.user_id)}
    others = []
    for session in (LoginSession.select()
                    .where(LoginSession.user == row.user_id, LoginSession.ended_at.is_null(),
                           LoginSession.id != named.id)
                    .order_by(LoginSession.last_active_at.desc())
                    .limit(settings.current().policy.max_sessions)):
        this = bool(this_device) and session.device_hash == this_device
        stranger = session.device_hash not in known or (
            live and bool(named.device_hash) and session.device_hash == named.device_hash)
        others.append(Listed(session, device_of(session), stranger and not this, this))
    return Disowned(User.get_by_id(row.user_id), Listed(named, device_of(named)), live, others)


def disown(token: str, *, also: list[str], now: float, ip: str) -> str:
    """End the session the link names and the person's sessions ``also`` (public ids), forget
    the browser it came from, stop the password; return a reset token for the new password."""
    with write_transaction():
        row = links.use(token, links.NOT_ME, now=now)
        named = LoginSession.get_by_id(row.session_id)
        devices.forget(row.user_id, named.device_hash)
        for public_id in [named.public_id, *also]:
            try:
                store.revoke(public_id, user_id=row.user_id, reason=rules.NOT_ME, now=now,
                             ip_address=ip)
            except rules.SessionNotFound:
                pass  # ended already (or never this person's): nothing to do
        User.update(password_blocked_at=now).where(User.id == row.user_id).execute()
        audit.record(audit.PASSWORD_BLOCKED, user=row.user_id, ip=ip, now=now,
                     detail=f"session {named.public_id} disowned")
        return links.issue(links.RESET, row.user_id, now=now,
                           ttl=settings.current().password_reset_ttl)
