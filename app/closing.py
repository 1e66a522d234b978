"""Deleting an account: every session ended (announced to every worker first, so none of them
serves a remembered one), the person's data erased, and one last mail to the address."""

from __future__ import annotations

from app import audit, recovery
from app.db import write_transaction
from app.models import OutboxMessage, Throttle, User
from app.sessions import rules, store


def delete_account(user_id: int, *, now: float, ip: str, user_agent: str,
                   device_name: str = "") -> str:
    """Erase the account ``user_id``; return the address it had (the last mail is queued).

    One transaction: the sessions end (the credential epoch moves on and each end is
    announced), then the row goes, and with it, by cascade, its sessions and their tokens, its
    security events, known browsers, links and waiting alerts. Earlier mail to the address and
    the throttle counts that name it go too; only the last mail keeps it, to be sent."""
    with write_transaction():
        user = User.get_by_id(user_id)
        store.revoke_all(user.id, reason=rules.ACCOUNT_DELETED, now=now, ip_address=ip)
        OutboxMessage.delete().where(OutboxMessage.recipient == user.email).execute()
        user.delete_instance()
        audit.note(audit.ACCOUNT_DELETED, now=now, user=user.id, ip=ip)
        recovery.notice(user.email, audit.ACCOUNT_DELETED, now=now, ip=ip,
                        user_agent=user_agent, device_name=device_name, forgot=False)
        # Keys that end with the address ("account:<email>", "mail-reset-to:<email>", the last
        # mail's own count among them): matched in full here, because LIKE would read an
        # address's "_" as a wildcard.
        named = [row.key for row in Throttle.select(Throttle.key)
                 .where(Throttle.key.contains(user.email)) if row.key.endswith(":" + user.email)]
        Throttle.delete().where(Throttle.key.in_(named)).execute()
    return str(user.email)
