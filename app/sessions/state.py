"""One session state: the fields every decision about a session is made on, by name.

``rules`` decides on a ``SessionState``; ``store`` reads it with ``COLUMNS`` (one column list,
in field order), and ``liveness`` remembers it. Adding a fact the rules need is one field here,
its column beside it, and a migration. Pure: no Flask, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from functools import cached_property


class Method(StrEnum):
    """How a session started: the proof its person gave."""

    PASSWORD = "password"
    RESET = "reset"  # a new password, set through a mailed link
    PASSKEY = "passkey"  # a WebAuthn assertion with user verification: two factors at once
    APP = "app"  # an app, through this browser's signed-in session and the person's consent


@dataclass(frozen=True)
class Principal:
    """The signed-in person of one request, and the session that carries them."""

    user_id: int
    user_public_id: str
    email: str
    session_id: int
    session_public_id: str
    proven_at: float  # when this person last proved who they are, by any method
    client_id: str = ""  # the app this session belongs to; "" for a browser


@dataclass(frozen=True)
class CarriedProof:
    """The proof a session starts with when it starts on the strength of another one (an
    app's, from the browser session that consented): that one's last proof and credential
    epoch, never fresher ones."""

    proven_at: float
    credential_epoch: int


@dataclass(frozen=True)
class SessionState:
    """A session as the rules see it, with its person's credential epoch and address.

    ``generation`` counts the session's values (rotations and re-keys); ``current_hash`` is
    the hash of the newest refresh token, ``rotated_at`` when it was issued and
    ``successor_seen`` whether it is proven (a request carried it, or an access token issued
    with it). ``credential_epoch`` is the person's epoch when this session's proof was
    checked; ``user_epoch`` theirs now, moved on by each credential change (``user_epoch_reason``
    says which).
    """

    id: int
    public_id: str
    user_id: int
    user_public_id: str
    email: str
    generation: int
    current_hash: str
    rotated_at: float
    successor_seen: bool
    rekeyed_at: float | None
    rekey_generation: int | None
    proven_at: float
    last_active_at: float
    absolute_expires_at: float
    ended_at: float | None
    end_reason: str | None
    credential_epoch: int
    user_epoch: int
    user_epoch_reason: str
    last_ip_address: str
    last_user_agent: str
    # The RFC 7638 thumbprint of the key this session is bound to ("" when it is not): its
    # value then rotates only with a proof signed by that key (a browser's DBSC key, an
    # app's DPoP key).
    key_thumbprint: str
    client_id: str  # the app whose session this is ("" for a browser's)

    @cached_property
    def principal(self) -> Principal:
        # Once per state: a remembered state serves every request of its session.
        return Principal(self.user_id, self.user_public_id, self.email, self.id,
                         self.public_id, self.proven_at, self.client_id)


# Where each field is read from: ``s`` is login_session, ``u`` its user.
_SOURCES = {
    "id": "s.id", "public_id": "s.public_id", "user_id": "s.user_id",
    "user_public_id": "u.public_id", "email": "u.email", "generation": "s.generation",
    "current_hash": "s.current_hash", "rotated_at": "s.rotated_at",
    "successor_seen": "s.successor_seen", "rekeyed_at": "s.rekeyed_at",
    "rekey_generation": "s.rekey_generation", "proven_at": "s.authenticated_at",
    "last_active_at": "s.last_active_at", "absolute_expires_at": "s.absolute_expires_at",
    "ended_at": "s.ended_at", "end_reason": "s.end_reason",
    "credential_epoch": "s.credential_epoch", "user_epoch": "u.credential_epoch",
    "user_epoch_reason": "u.credential_reason", "last_ip_address": "s.last_ip_address",
    "last_user_agent": "s.last_user_agent", "key_thumbprint": "s.key_thumbprint",
    "client_id": "s.client_id",
}
FIELDS = tuple(field.name for field in fields(SessionState))
if set(_SOURCES) != set(FIELDS):  # a field without a column, or a column without a field
    raise ImportError(f"SessionState and its columns differ: {set(_SOURCES) ^ set(FIELDS)}")
# The SELECT list that reads a SessionState, in field order: ``SessionState(*row)``.
COLUMNS = ", ".join(_SOURCES[name] for name in FIELDS)
FROM = 'login_session s JOIN "user" u ON u.id = s.user_id'


def from_row(row: tuple[object, ...]) -> SessionState:
    """The state a row of ``COLUMNS`` reads (SQLite gives booleans as integers)."""
    state = SessionState(*row)  # type: ignore[arg-type]  # the columns are in field order
    if type(state.successor_seen) is not bool:
        state = replace(state, successor_seen=bool(state.successor_seen))
    return state
