"""The configured limits, as keys to count by: pure (``throttle`` counts them in the database).

Keys name what is counted: ``account:<email>``, ``ip:<address>``, ``register-ip:<address>``...
NIST SP 800-63B 5.2.2 caps consecutive failed attempts on one account at 100: the short window
alone would allow ~960 a day, so a second tier stops them at the cap until a success.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from app.config import (
    ACCOUNT_CAP_WINDOW,
    ACCOUNT_FAILURE_CAP,
    MAIL_WINDOW,
    MAILS_PER_ACCOUNT,
    RESET_LIMIT_IP,
)


@dataclass(frozen=True)
class Limit:
    key: str
    limit: int
    window: int
    account_wide: bool = False  # used up, it locks the account for every unknown browser


def address_key(ip: str) -> str:
    """What a per-address limit counts: an IPv4 address, or the /64 an IPv6 address is in.

    One IPv6 subscriber is routinely handed a whole /64 (and privacy extensions rotate
    addresses within it), so keying on the exact address would never limit anyone.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip  # not an address (a unix socket, a test): counted as it is
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


@dataclass(frozen=True)
class Throttles:
    """The configured limits, each within one window: password attempts per account (or per
    known browser at it) and per client address, with NIST's cap per account; unknown session
    values per address; registrations per address."""

    per_account: int
    per_ip: int
    window: int
    unknown_sessions_per_ip: int
    register_per_ip: int = 10

    def for_sign_in(self, email: str, ip: str, device: str | None = None) -> list[Limit]:
        """The account's limits first (a success resets them), the address's last.

        ``device`` names a browser that has signed in to this account before: it is judged by
        its own attempts, not by the account's, so failures from elsewhere cannot lock it out.
        """
        subject = f"device:{device}" if device else f"account:{email}"
        return [Limit(subject, self.per_account, self.window, account_wide=not device),
                Limit(f"total-{subject}", ACCOUNT_FAILURE_CAP, ACCOUNT_CAP_WINDOW,
                      account_wide=not device),
                Limit(f"ip:{address_key(ip)}", self.per_ip, self.window)]

    def account_keys(self, email: str) -> list[str]:
        """What locks an account for every browser it does not know, and its codes' cap: a
        password reset or the link mailed with a lock sets them back to zero."""
        return [limit.key for limit in (*self.for_sign_in(email, "")[:2],
                                        *self.for_second_step(email, "")[:2])]

    def for_reset(self, ip: str) -> list[Limit]:
        return [Limit(f"reset-ip:{address_key(ip)}", RESET_LIMIT_IP, self.window)]

    def for_second_step(self, email: str, ip: str) -> list[Limit]:
        """Codes at the second step of a sign-in: as many as passwords, per account (with
        NIST's cap, which names one-time codes too) and per address, counted apart from them
        (the password was right). The account's first (a success resets them)."""
        return [Limit(f"code-account:{email}", self.per_account, self.window),
                Limit(f"total-code-account:{email}", ACCOUNT_FAILURE_CAP, ACCOUNT_CAP_WINDOW,
                      account_wide=True),
                Limit(f"code-ip:{address_key(ip)}", self.per_ip, self.window)]

    def for_address(self, ip: str) -> list[Limit]:
        """An address's failed proofs that name no account (a refused passkey): the password
        sign-in's per-address limit, shared with it."""
        return [Limit(f"ip:{address_key(ip)}", self.per_ip, self.window)]

    def for_unknown_sessions(self, ip: str) -> list[Limit]:
        return [Limit(f"session-ip:{address_key(ip)}", self.unknown_sessions_per_ip,
                      self.window)]

    def for_registration(self, ip: str) -> list[Limit]:
        return [Limit(f"register-ip:{address_key(ip)}", self.register_per_ip, self.window)]


def for_mail(kind: str, recipient: str, account: int | str) -> list[Limit]:
    """A mail of ``kind`` that a form causes: counted per recipient address and per account
    (an id; a change of address mails an address that is not yet the account's)."""
    return [Limit(f"mail-{kind}:{account}", MAILS_PER_ACCOUNT, MAIL_WINDOW),
            Limit(f"mail-{kind}-to:{recipient}", MAILS_PER_ACCOUNT, MAIL_WINDOW)]
