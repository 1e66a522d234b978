"""peewee models only, one module per part of the product. Times are UNIX seconds (floats): one
representation on both engines.

A new table is a model in the module of its part, listed in ``ALL`` below, and a migration in
``app.migrations``; ``tests/test_migrations.py`` fails when the two disagree.
"""

from __future__ import annotations

from app.models.accounts import AnonymousFailure, KnownDevice, Throttle, User
from app.models.alerts import DigestedSignIn
from app.models.base import BaseModel, SchemaVersion
from app.models.devicekeys import KeyChallenge, SessionKey
from app.models.mail import LinkToken, OutboxMessage
from app.models.sessions import LoginSession, RefreshToken, SecurityEvent, SessionChange

ALL: list[type[BaseModel]] = [
    User, LoginSession, RefreshToken, SecurityEvent, Throttle, SchemaVersion, KnownDevice,
    AnonymousFailure, OutboxMessage, LinkToken, SessionChange, SessionKey, KeyChallenge,
    DigestedSignIn,
]

__all__ = [
    "ALL", "AnonymousFailure", "BaseModel", "DigestedSignIn", "KeyChallenge", "KnownDevice",
    "LinkToken", "LoginSession", "OutboxMessage", "RefreshToken", "SchemaVersion",
    "SecurityEvent", "SessionChange", "SessionKey", "Throttle", "User",
]
