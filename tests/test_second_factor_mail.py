"""Each change to how an account signs in is recorded and mailed, as a password change is:
a passkey added or removed, two-step sign-in on or off, a recovery code used."""

from __future__ import annotations

import pytest
from support import PASSWORD, browser, page, signed_up, submit
from test_passkeys import add_passkey
from test_two_step import enter_code, set_up
from webauthn_soft import SoftAuthenticator

from app.models import Passkey, SecurityEvent


@pytest.fixture
def mailing(make_app, smtp):
    app = make_app(GATEHOUSE_SMTP_URL=smtp.url, GATEHOUSE_PUBLIC_URL="http://localhost")
    yield app
    app.extensions["gatehouse_mail"].dispatcher.stop()


def test_every_change_to_the_second_factors_is_recorded_and_mailed(mailing, smtp, clock):
    ada = browser(mailing)
    signed_up(ada)
    add_passkey(ada, SoftAuthenticator(), name="Phone")
    added = smtp.mailbox.about("ada@example.com", "A passkey was added to your account")
    assert "\u201cPhone\u201d" in added.text
    submit(ada, f"/account/passkeys/{Passkey.get().public_id}/remove", {},
           form_page="/account/passkeys")
    smtp.mailbox.about("ada@example.com", "A passkey was removed from your account")
    _, codes = set_up(ada, clock)
    smtp.mailbox.about("ada@example.com", "Two-step sign-in was turned on")
    submit(ada, "/logout", {}, form_page="/account")
    submit(ada, "/login", {"email": "ada@example.com", "password": PASSWORD})
    assert enter_code(ada, codes[3]).status_code == 302
    used = smtp.mailbox.about("ada@example.com", "A recovery code was used")
    assert "9 of them are left" in used.text
    submit(ada, "/account/two-factor/off", {}, form_page="/account/two-factor")
    smtp.mailbox.about("ada@example.com", "Two-step sign-in was turned off")
    kinds = [e.kind for e in SecurityEvent.select().order_by(SecurityEvent.id)]
    for kind in ("passkey_added", "passkey_removed", "two_step_on", "recovery_code_used",
                 "two_step_off"):
        assert kind in kinds
    activity = page(ada.get("/sessions")).get_text()
    assert "Passkey added" in activity and "Recovery code used" in activity
