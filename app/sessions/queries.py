"""What the pages read about sessions: lists, counts and single sessions. Reads only; every
change is a ``store`` operation."""

from __future__ import annotations

from peewee import JOIN, Case, ModelSelect, Select, fn

from app import tokens
from app.models import KnownDevice, LoginSession, User
from app.paging import Page, paged
from app.sessions.rules import Policy, SessionNotFound
from app.sessions.store import Counted


def _named(query: ModelSelect[LoginSession]) -> ModelSelect[LoginSession]:
    """Sessions with the name the person gave their device (``chosen_name``, "" or None)."""
    return (query.select_extend(KnownDevice.name.alias("chosen_name"))
            .join_from(LoginSession, KnownDevice, JOIN.LEFT_OUTER,
                       on=(KnownDevice.user == LoginSession.user)
                       & (KnownDevice.device_hash == LoginSession.device_hash))
            .objects())


def _live(user_id: int, policy: Policy, now: float) -> ModelSelect[LoginSession]:
    return (LoginSession.select()
            .join(User)
            .where(LoginSession.user == user_id, LoginSession.ended_at.is_null(),
                   LoginSession.credential_epoch >= User.credential_epoch,
                   LoginSession.absolute_expires_at > now,
                   LoginSession.last_active_at > policy.live_since(now)))


def list_active(user_id: int, *, policy: Policy, now: float, current: int | None = None,
                page: int = 1, device_hash: str = "") -> Page:
    """The person's live sessions with their devices' names: ``current`` first, then the
    others of its device (``device_hash``), then the most recently used."""
    first = [(LoginSession.id == current, 0)]
    if device_hash:
        first.append((LoginSession.device_hash == device_hash, 1))
    return paged(_named(_live(user_id, policy, now))
                 .order_by(Case(None, first, 2), LoginSession.last_active_at.desc(),
                           LoginSession.id.desc()), page)


def count_others(user_id: int, *, policy: Policy, now: float, keep: int) -> Counted:
    """How many live sessions other than ``keep`` the person has, on how many devices: what
    "sign out all other sessions" would end. One aggregate, over at most the session cap."""
    device = Case(None, [(LoginSession.device_hash == "", LoginSession.public_id)],
                  LoginSession.device_hash)
    counts: Select = (_live(user_id, policy, now).where(LoginSession.id != keep)
                      .select(fn.COUNT(LoginSession.id), fn.COUNT(device.distinct())))
    sessions, on = counts.tuples().get()
    return Counted(int(sessions), int(on))


def list_ended(user_id: int, *, since: float, page: int = 1) -> Page:
    return paged(_named(LoginSession.select()
                        .where(LoginSession.user == user_id, LoginSession.ended_at > since))
                 .order_by(LoginSession.ended_at.desc(), LoginSession.id.desc()), page)


def find(user_id: int, session_public_id: str) -> LoginSession:
    """One of ``user_id``'s sessions, live or ended, with its device's name; SessionNotFound
    for anyone else's, or a value that is no public id."""
    if not tokens.is_public_id(session_public_id):
        raise SessionNotFound()
    session = _named(LoginSession.select().where(
        LoginSession.user == user_id, LoginSession.public_id == session_public_id)).first()
    if session is None:
        raise SessionNotFound()
    return session


def by_public_id(user_id: int, public_ids: set[str]) -> dict[str, LoginSession]:
    """Some of the person's sessions by public id (the ones that signed others out)."""
    if not public_ids:
        return {}
    rows = _named(LoginSession.select().where(LoginSession.user == user_id,
                                              LoginSession.public_id.in_(list(public_ids))))
    return {row.public_id: row for row in rows}


def is_live(user_id: int, session_id: int, *, policy: Policy, now: float) -> bool:
    """Whether ``session_id`` is one of ``user_id``'s live sessions (not ended, not older than
    their latest credential change, not run out)."""
    return bool(_live(user_id, policy, now).where(LoginSession.id == session_id).exists())
