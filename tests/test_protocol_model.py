"""The rotation protocol as a model: a Hypothesis state machine drives the real app (create_app,
a real temporary database, the injected clock) through the test client, with the actors of a
real deployment, and checks the protocol's promises after every step.

Actors: the person's browser (one cookie jar, several tabs firing at once, responses that
arrive in any order or never), a clock that jumps, a thief holding a copy taken at any moment
(both cookies, or the access cookie alone), a password change and "sign out all other
sessions" by the person, and another device of theirs.

Everything is observed from outside: status codes and the cookies responses set. The model
learns the order of session values from the responses that mint them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

import jwt
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import PASSWORD, UA_FIREFOX, UA_PHONE, cookie, csrf_token

from app.carriers import ACCESS_COOKIE, SESSION_COOKIE
from app.db import database
from app.models import ALL

ACCESS_TTL, GRACE, LOST_WINDOW = 60, 30, 240
IDLE, MAX_AGE = 300, 1800
WRITE_INTERVAL = 60  # "last active" is written at most this often: the idle limit's slack
PASSWORDS = (PASSWORD, "another long passphrase, also fine")
SETTINGS = {
    "GATEHOUSE_ACCESS_TOKEN_TTL": ACCESS_TTL, "GATEHOUSE_REFRESH_GRACE": GRACE,
    "GATEHOUSE_LOST_RESPONSE_WINDOW": LOST_WINDOW, "GATEHOUSE_SESSION_IDLE_TTL": IDLE,
    "GATEHOUSE_SESSION_MAX_AGE": MAX_AGE,
}
# Bounded so that the model adds well under a minute to a CI run on a small machine.
MODEL_SETTINGS = settings(max_examples=120, stateful_step_count=50, deadline=None,
                          database=None, print_blob=True)
SEEN: Counter[str] = Counter()  # what the runs exercised, so that the model is not vacuous
# Around each window: the grace window (30), the access token (60), the lost-response window
# (240), the idle limit (300, plus up to 60) and the absolute lifetime (1800).
WAITS = st.sampled_from([0, 0, 1, 5, 20, 31, 45, 61, 61, 90, 241, 270, 299, 299, 330, 361, 700])
PRESENT = {"both": (ACCESS_COOKIE, SESSION_COOKIE), "session": (SESSION_COOKIE,),
           "access": (ACCESS_COOKIE,)}
LOSSES = st.sampled_from([False, False, False, False, True])  # most responses arrive


class Jar:
    """A browser's cookie store: keeps what responses set, drops a cookie at its Max-Age."""

    def __init__(self) -> None:
        self.cookies: dict[str, tuple[str, float | None]] = {}

    def get(self, name: str, now: float) -> str | None:
        value, expires = self.cookies.get(name, (None, None))
        return value if expires is None or now < expires else None

    def header(self, now: float) -> str:
        return "; ".join(f"{n}={self.get(n, now)}" for n in self.cookies if self.get(n, now))

    def apply(self, response, now: float) -> None:
        for line in response.headers.getlist("Set-Cookie"):
            for name, morsel in SimpleCookie(line).items():
                age = morsel["max-age"]
                if age == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = (morsel.value, now + int(age) if age else None)

    def copy(self, names: tuple[str, ...]) -> Jar:
        other = Jar()
        other.cookies = {n: v for n, v in self.cookies.items() if n in names}
        return other


def set_values(response) -> dict[str, str]:
    """The auth cookies a response sets ("" for a cleared one)."""
    found = {}
    for line in response.headers.getlist("Set-Cookie"):
        for name, morsel in SimpleCookie(line).items():
            found[name] = "" if morsel["max-age"] == "0" else morsel.value
    return found


def outcome(response) -> int:
    """200 when the request was served signed in, 401 when it was not (a page redirects to
    the sign-in page instead)."""
    if response.status_code == 302 and "/login" in response.headers["Location"]:
        return 401
    return 200 if response.status_code in (200, 302) else response.status_code


@dataclass
class Family:
    """What the model knows of the person's current session (one token family)."""

    signed_in_at: float
    last_activity: float
    chain: list[str] = field(default_factory=list)  # session values in the order minted
    minted: dict[str, float] = field(default_factory=dict)
    successor: dict[str, str] = field(default_factory=dict)
    value_of_access: dict[str, str] = field(default_factory=dict)  # access token -> its value
    proven: set[str] = field(default_factory=set)  # values whose access token was used
    rekeyed_at_position: int = -1
    copied: bool = False  # a thief holds a copy of something
    lost: bool = False  # a response that set cookies never reached the person
    must_be_ended: bool = False
    ended: bool = False

    def mint(self, value: str, at: float) -> None:
        if value not in self.minted:
            self.minted[value] = at
            self.chain.append(value)

    def position(self, value: str | None) -> int:
        return self.chain.index(value) if value in self.minted else -1


class ProtocolModel(RuleBasedStateMachine):
    app = None  # bound by the test below
    clock = None

    def __init__(self) -> None:
        super().__init__()
        with database.connection_context():  # a clean database for each example
            for model in reversed(ALL):  # children first
                model.delete().execute()
        self.clock.now = 1_800_000_000.0
        self.client = self.app.test_client(use_cookies=False)
        self.step = 0
        self.password = PASSWORDS[0]
        self.person, self.family = Jar(), None
        self.thief, self.thief_copy = None, None  # (family, step) the copy came from
        self.device, self.device_since = None, None
        self.changes: list[int] = []  # steps at which a credential change happened
        self.send(Jar(), "POST", "/register", form="/register",
                  data={"email": "ada@example.com", "password": self.password})
        self.sign_in_person()

    # --- talking to the app ---------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def send(self, jar: Jar, method: str, path: str, *, form: str | None = None,
             data: dict | None = None, ip: str = "203.0.113.7", agent: str = UA_FIREFOX):
        """One request with ``jar``'s cookies; a form's CSRF token is fetched first."""
        if form is not None:
            shown = self.send(jar, "GET", form, ip=ip, agent=agent)
            jar.apply(shown, self.now)
            data = {"csrf_token": csrf_token(shown), **(data or {})}
        response = self.client.open(path, method=method, data=data, headers={
            "Cookie": jar.header(self.now), "User-Agent": agent}, environ_base={
            "REMOTE_ADDR": ip})
        assert response.status_code < 500, response.get_data(as_text=True)[:300]
        return response

    def sign_in_person(self) -> None:
        self.person = Jar()
        response = self.send(self.person, "POST", "/login", form="/login",
                             data={"email": "ada@example.com", "password": self.password})
        assert response.status_code == 302
        self.family = Family(signed_in_at=self.now, last_activity=self.now)
        self.observe(response, presented=None)
        self.person.apply(response, self.now)

    def observe(self, response, presented: str | None, rekey: bool = False) -> None:
        """Learn from the cookies a response of this family sets."""
        family, cookies = self.family, set_values(response)
        value, access = cookies.get(SESSION_COOKIE), cookies.get(ACCESS_COOKIE)
        if not value:
            return
        if presented is not None and not rekey:
            # Never two successors of one value, whoever presents it and whenever.
            assert family.successor.setdefault(presented, value) == value
        family.mint(value, self.now)
        if rekey:
            family.rekeyed_at_position = family.position(value)
        if access:
            family.value_of_access[access] = value

    # --- limits --------------------------------------------------------------------------

    def over_the_limits(self, family: Family | None = None) -> bool:
        family = family or self.family
        return (self.now >= family.signed_in_at + MAX_AGE
                or self.now >= family.last_activity + IDLE + WRITE_INTERVAL)

    def within_the_limits(self) -> bool:
        family = self.family
        return (self.now < family.signed_in_at + MAX_AGE
                and self.now < family.last_activity + IDLE)

    def check_limits(self, status: int) -> None:
        if self.over_the_limits():
            assert status == 401, "a session outlived its idle or absolute limit"
        if status == 200:
            self.family.last_activity = self.now

    # --- the person ----------------------------------------------------------------------

    def signed_in(self) -> bool:
        return self.person.get(SESSION_COOKIE, self.now) is not None

    def person_request(self, method: str = "GET", path: str = "/api/me", **kwargs):
        family, jar = self.family, self.person
        presented = jar.get(SESSION_COOKIE, self.now)
        access = jar.get(ACCESS_COOKIE, self.now)
        clean = not (family.copied or family.lost) and self.within_the_limits()
        promise = self.promise(presented, access)
        response = self.send(jar, method, path, **kwargs)
        status = outcome(response)
        self.check(status, promise)
        if clean:
            assert status == 200, "signed out though no copy exists and nothing was lost"
        if status == 401:
            SEEN.update(["the person finds the session ended"])
            family.ended = True
        self.note_proof(response, access, status)
        return response, presented, status

    def note_proof(self, response, access: str | None, status: int) -> None:
        """A request served on its access token proves the value it was issued with."""
        if status == 200 and access and not set_values(response).get(SESSION_COOKIE):
            self.family.proven.add(self.family.value_of_access.get(access))

    def check(self, status: int, promise: str | None) -> None:
        """The limits, and what the protocol promised for the values presented."""
        self.check_limits(status)
        family = self.family
        if family.must_be_ended or promise is not None:
            assert status == 401, f"served, though {promise or 'the session was ended'}"
        if promise is not None and promise.startswith("reuse"):
            SEEN.update([promise])
            family.must_be_ended = True

    def promise(self, value: str | None, access: str | None) -> str | None:
        """Why the protocol must refuse a request presenting session value ``value`` and
        access token ``access`` (one the browser still holds), or None when it may serve it.
        A reason starting with "reuse" also ends the session."""
        family = self.family
        head = len(family.chain) - 1
        since = self.now - family.minted[family.chain[-1]]
        issued_with = family.position(family.value_of_access.get(access))
        if issued_with >= max(0, family.rekeyed_at_position):  # decided on the token
            if issued_with < head - 1 or (issued_with == head - 1 and since >= GRACE + 1):
                return "reuse: a token of a superseded value, past the grace window"
            return None
        presented = family.position(value)
        if presented < 0 or presented == head:
            return None
        if presented < family.rekeyed_at_position and since <= GRACE + 1:
            return "refused: replaced by a re-key moments ago"
        if presented < head - 1:
            return "reuse: an older value"
        if since > LOST_WINDOW + 1:
            return "reuse: the predecessor, past the lost-response window"
        if since >= GRACE + 1 and family.chain[-1] in family.proven:
            return "reuse: the predecessor of a proven value, past the grace window"
        return None

    @rule(wait=WAITS, tabs=st.integers(1, 3),
          gaps=st.lists(st.integers(0, 2), min_size=2, max_size=2),
          order=st.permutations(range(3)), lose=st.lists(LOSSES, min_size=3, max_size=3),
          follow_up=st.booleans())
    def browse(self, wait, tabs, gaps, order, lose, follow_up):
        """After ``wait``, several tabs fire at once with the same cookies; their responses
        come back in any order, and some may never arrive. Then, maybe, the page's script
        makes a call with whatever cookies the browser now holds."""
        self.clock.advance(wait)
        if not self.signed_in():
            family = self.family
            assert family.ended or family.copied or family.lost or not self.within_the_limits(), \
                "the browser dropped its session cookie before the session's limits"
            return
        snapshot = self.person.copy(tuple(self.person.cookies))
        responses = []
        for tab in range(tabs):
            if tab:
                self.clock.advance(gaps[tab - 1])
            self.person = snapshot.copy(tuple(snapshot.cookies))
            response, presented, _ = self.person_request()
            self.observe(response, presented)
            responses.append(response)
        self.person = snapshot
        for tab in (i for i in order if i < tabs):
            if lose[tab] and set_values(responses[tab]):
                SEEN.update(["a response that set cookies is lost"])
                self.family.lost = True
            else:
                self.person.apply(responses[tab], self.now)
        if follow_up and self.signed_in():
            presented = self.person.get(SESSION_COOKIE, self.now)
            response, _, _ = self.person_request()
            self.observe(response, presented)
            self.person.apply(response, self.now)

    @precondition(lambda self: not self.signed_in())
    @rule()
    def person_signs_in_again(self):
        self.sign_in_person()

    def credential_change(self, form: str, path: str, data: dict) -> None:
        if not self.signed_in():
            return
        jar, presented = self.person, self.person.get(SESSION_COOKIE, self.now)
        shown, _, status = self.person_request("GET", form)
        self.observe(shown, presented)
        jar.apply(shown, self.now)
        if status != 200:
            return
        presented = jar.get(SESSION_COOKIE, self.now)
        data = {"csrf_token": csrf_token(shown), **data}
        response, _, status = self.person_request("POST", path, data=data)
        assert status == 200, "the browser that changed its credentials stays signed in"
        self.observe(response, presented, rekey=True)
        jar.apply(response, self.now)
        self.changes.append(self.step)

    @rule(new_password=st.booleans())
    def change_credentials(self, new_password):
        """The person changes their password, or signs out all other sessions."""
        if not new_password:
            self.credential_change("/sessions", "/sessions/revoke-others",
                                   {"password": self.password})
            return
        new = PASSWORDS[1] if self.password == PASSWORDS[0] else PASSWORDS[0]
        before = len(self.changes)
        self.credential_change("/account/password", "/account/password",
                               {"current_password": self.password, "new_password": new})
        if len(self.changes) > before:
            self.password = new

    # --- the thief -------------------------------------------------------------------------

    @rule(access_only=st.booleans(), rotate_at_once=st.booleans())
    def thief_copies(self, access_only, rotate_at_once):
        """A copy of the person's cookies (or of the access cookie alone), taken now; a thief
        may rotate with it at once, before the person does."""
        names = (ACCESS_COOKIE,) if access_only else (ACCESS_COOKIE, SESSION_COOKIE)
        if not any(self.person.get(n, self.now) for n in names):
            return
        self.thief = self.person.copy(names)
        self.thief_copy = (self.family, self.step)
        self.family.copied = True
        if rotate_at_once and not access_only:
            self.thief_uses_the_copy(wait=0, present="session", keep=True)

    @precondition(lambda self: self.thief is not None)
    @rule(wait=WAITS, present=st.sampled_from(sorted(PRESENT)), keep=st.booleans())
    def thief_uses_the_copy(self, wait, present, keep):
        """After ``wait``, the thief presents its copy: both cookies, the session value alone
        (to rotate at once) or the access cookie alone (never showing the value). It keeps
        what it is given, or throws it away to present the same copy again."""
        self.clock.advance(wait)
        family, copied_at = self.thief_copy
        jar = self.thief.copy(PRESENT[present])
        value, access = jar.get(SESSION_COOKIE, self.now), jar.get(ACCESS_COOKIE, self.now)
        if value is None and access is None:
            return
        current = family is self.family and not family.ended
        # The person's browser let this session's cookie lapse (its Max-Age) while the thief
        # kept the session alive, and signed in afresh: nothing told the server the old
        # session was over, so within its limits the copy may still be served.
        abandoned = family is not self.family and not (family.ended or family.must_be_ended)
        promise = self.promise(value, access) if current else None
        caught = current and self.person_moved_on(value, access)
        response = self.send(jar, "GET", "/api/me", ip="198.51.100.9", agent=UA_PHONE)
        status = response.status_code
        if any(step > copied_at for step in self.changes) or not (current or abandoned):
            assert status == 401, "a copy from an ended session or before a credential change"
            return
        if abandoned:
            SEEN.update([f"thief presents a copy of an abandoned session: {status}"])
            if self.over_the_limits(family):
                assert status == 401, "an abandoned session outlived its limits"
            if status == 200:
                family.last_activity = self.now
            if keep:
                self.thief.apply(response, self.now)
            return
        SEEN.update([f"thief presents a copy: {status}"])
        if caught:  # the issue's own wording of the promise, checked beside the general one
            assert promise is not None and promise.startswith("reuse")
        self.check(status, promise)
        self.note_proof(response, access, status)
        self.observe(response, value)
        if keep:
            self.thief.apply(response, self.now)

    def person_moved_on(self, value: str | None, access: str | None) -> bool:
        """The person holds the newest value and has used it, its grace window has passed,
        and the copy is of an older value: the session must end now (the issue allows one
        further rotation; the protocol needs none)."""
        family = self.family
        current = self.person.get(SESSION_COOKIE, self.now)
        copied = value if value is not None else family.value_of_access.get(access)
        return (current is not None and current == family.chain[-1]
                and current in family.proven
                and self.now >= family.minted[current] + GRACE + 1
                and 0 <= family.position(copied) < family.position(current)
                and family.position(copied) >= family.rekeyed_at_position)

    # --- another device of the person -------------------------------------------------------

    @rule(sign_in=st.booleans())
    def other_device(self, sign_in):
        """Another device of the person signs in, or makes a request."""
        if sign_in or self.device is None:
            self.other_device_signs_in()
        else:
            self.other_device_browses()

    def other_device_signs_in(self):
        self.device = Jar()
        response = self.send(self.device, "POST", "/login", form="/login",
                             data={"email": "ada@example.com", "password": self.password},
                             ip="192.0.2.10", agent=UA_PHONE)
        assert response.status_code == 302
        self.device.apply(response, self.now)
        self.device_since = self.step

    def other_device_browses(self):
        response = self.send(self.device, "GET", "/api/me", ip="192.0.2.10", agent=UA_PHONE)
        if any(s > self.device_since for s in self.changes):
            assert response.status_code == 401, "a session outlived a credential change"
        self.device.apply(response, self.now)

    @invariant()
    def count_steps(self):
        self.step += 1


@pytest.mark.slow
def test_the_rotation_protocol_keeps_its_promises(make_app, clock):
    app = make_app(**SETTINGS)
    machine = type("BoundProtocolModel", (ProtocolModel,), {"app": app, "clock": clock})
    SEEN.clear()
    run_state_machine_as_test(machine, settings=MODEL_SETTINGS)
    # Not vacuous: copies were presented, and some had to be caught.
    assert SEEN["thief presents a copy: 200"] and SEEN["a response that set cookies is lost"]
    assert any(kind.startswith("reuse") for kind in SEEN)


def test_the_access_token_records_the_generation_of_its_value(ada):
    """What the model relies on to tell a copy from the person: the token says which value it
    was issued with."""
    claims = jwt.decode(cookie(ada, ACCESS_COOKIE), options={"verify_signature": False})
    assert claims["gen"] == 0
