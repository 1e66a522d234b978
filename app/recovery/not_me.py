""""This wasn't me", from a new-sign-in mail. Its link names one session and acts on no other
besides the sessions of that browser since, unless the person ticks it: it ends them, forgets
the browser it came from, stops the password that let it in (a sign-in with it is told to reset
it), and hands on to choosing a new one (the mailed link has just proven the mailbox). The page
lists the person's other sessions, those that may be the intruder's ticked (``Suspects``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import peewee

from app import audit, devices, links, settings
from app.db import write_transaction
from app.models import KnownDevice, LinkToken, LoginSession, User
from app.sessions import rules, store
from app.sessions.state import Method


@dataclass
class Listed:
    """A session on the page: its device as the person knows it, and whether to end it."""

    session: LoginSession
    device: str
    suggested: bool = False
    this: bool = False  # the browser reading the page
    certain: bool = False  # the disowned browser's own: ended whatever the box says


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
    ``this_device``. Ticked: every session of the disowned browser since the named one (it is
    ended whatever the person unticks), and each session started since then from a browser the
    account did not know before it, or does not know now; this browser's never is."""
    named = LoginSession.get_by_id(row.session_id)
    live = named.ended_at is None and named.absolute_expires_at > now
    suspects = Suspects.of(named, this_device)
    others = []
    for session in (LoginSession.select()
                    .where(LoginSession.user == row.user_id, LoginSession.ended_at.is_null(),
                           LoginSession.id != named.id)
                    .order_by(LoginSession.last_active_at.desc())
                    .limit(settings.current().policy.max_sessions)):
        this = bool(this_device) and session.device_hash == this_device
        others.append(Listed(session, device_of(session), suspects.suggests(session), this,
                             suspects.certain(session)))
    return Disowned(User.get_by_id(row.user_id), Listed(named, device_of(named)), live, others)


@dataclass
class Suspects:
    """Which sessions may be whoever signed in as ``named``'s. Theirs for certain: the
    sessions of that browser started since (signing in again there is not announced: the
    browser became known). Likely theirs: the sessions started since from a browser the
    account did not know before the named sign-in. A password reset after it is where both
    stop: it signed out every session and set a password only the mailbox knows."""

    named: LoginSession
    this_device: str
    known_before: set[str]
    known_now: set[str]
    until: int | None  # the session the first reset since the named sign-in started, if any

    @classmethod
    def of(cls, named: LoginSession, this_device: str) -> Suspects:
        known = {device.device_hash: device.first_seen_at for device in KnownDevice.select(
            KnownDevice.device_hash, KnownDevice.first_seen_at).where(
            KnownDevice.user == named.user_id)}
        before = {device for device, first_seen in known.items()
                  if first_seen < named.created_at}
        until = (LoginSession.select(peewee.fn.MIN(LoginSession.id))
                 .where(LoginSession.user == named.user_id,
                        LoginSession.start_method == Method.RESET,
                        LoginSession.id > named.id).scalar())
        return cls(named, this_device, before, set(known), until)

    def _since(self, session: LoginSession) -> bool:
        """Started at or after the named session (ids follow the order sessions start in) and
        before any reset since, from another browser than the one reading the page."""
        return (session.id >= self.named.id
                and (self.until is None or session.id < self.until)
                and not (self.this_device and session.device_hash == self.this_device))

    def certain(self, session: LoginSession) -> bool:
        """A session of the disowned browser since the named one: ended with it."""
        return (self._since(session) and bool(self.named.device_hash)
                and session.device_hash == self.named.device_hash)

    def suggests(self, session: LoginSession) -> bool:
        if self.this_device and session.device_hash == self.this_device:
            return False
        return self.certain(session) or session.device_hash not in self.known_now or (
            self._since(session) and session.device_hash not in self.known_before)

    def sessions(self) -> list[str]:
        """The public ids of the live sessions ended whatever the page's boxes say."""
        if not self.named.device_hash:
            return []
        return [session.public_id for session in LoginSession.select().where(
            LoginSession.user == self.named.user_id, LoginSession.ended_at.is_null(),
            LoginSession.device_hash == self.named.device_hash) if self.certain(session)]


def disown(token: str, *, also: list[str], this_device: str, now: float, ip: str) -> str:
    """End the session the link names, the disowned browser's sessions since (but never the
    browser ``this_device`` that presses the button) and the person's sessions ``also``
    (public ids), forget the browser it came from, stop the password; return a reset token
    for the new password."""
    with write_transaction():
        row = links.use(token, links.NOT_ME, now=now)
        named = LoginSession.get_by_id(row.session_id)
        certain = Suspects.of(named, this_device).sessions()
        devices.forget(row.user_id, named.device_hash)
        for public_id in dict.fromkeys([named.public_id, *certain, *also]):
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
