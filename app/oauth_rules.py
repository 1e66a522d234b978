"""The OAuth rules an app's sign-in follows, pure: which redirect URIs may be registered and
which match (RFC 8252), and the PKCE check (RFC 7636, S256 only)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from urllib.parse import urlsplit

# RFC 7636 4.1: 43 to 128 characters of [A-Z a-z 0-9 - . _ ~]; a challenge (S256) is 43.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")
LOOPBACK_HOSTS = ("127.0.0.1", "[::1]")
MAX_URI = 512


def registrable(uri: str) -> str | None:
    """Why ``uri`` cannot be registered, or None: a loopback ``http://127.0.0.1/PATH`` (or
    ``[::1]``, any port at use, RFC 8252 7.3), a private-use scheme with a dot
    (``com.example.app:/cb``, 7.1) or an https URL (7.2); never a fragment."""
    if len(uri) > MAX_URI or not uri.isprintable() or any(c in uri for c in " ;,'\"\\"):
        return "too long, not printable, or with a space, quote, backslash, ';' or ','"
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment"
    if parts.scheme == "http":
        if parts.netloc.rsplit(":", 1)[0] not in LOOPBACK_HOSTS and parts.netloc not in \
                LOOPBACK_HOSTS:
            return "http only on the loopback address 127.0.0.1 or [::1] (not localhost)"
        return None
    if parts.scheme == "https":
        return None if parts.hostname else "an https URL needs a host"
    if "." in parts.scheme and not parts.netloc and parts.path.startswith("/"):
        return None
    return "a loopback http URL, a private-use scheme like com.example.app:/cb, or https"


def _without_port(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.netloc.rsplit(":", 1)[0] if not parts.netloc.endswith("]") else parts.netloc
    return parts._replace(netloc=host).geturl()


def redirect_matches(registered: list[str], uri: str) -> bool:
    """Exact string comparison, except that a loopback URI matches with any port."""
    if uri in registered:
        return True
    parts = urlsplit(uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1"):
        return False
    try:
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        return False
    return _without_port(uri) in [_without_port(each) for each in registered
                                  if urlsplit(each).scheme == "http"]


def valid_challenge(challenge: str) -> bool:
    return bool(_CHALLENGE.fullmatch(challenge))


def verifier_matches(verifier: str, challenge: str) -> bool:
    """S256: BASE64URL(SHA256(verifier)) == challenge, compared in constant time."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return hmac.compare_digest(digest, challenge.encode())


def redirect_source(uri: str) -> str:
    """The Content-Security-Policy source a consent form's redirect to ``uri`` needs (its
    ``form-action``: Chromium checks the redirect too): the origin of an http(s) URI, the
    scheme of a private-use one."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
    return f"{parts.scheme}:"
