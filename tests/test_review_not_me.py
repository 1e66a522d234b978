""""This wasn't me" against an intruder who signs in again from the same browser before the
owner presses the button (review)."""

from __future__ import annotations

import pytest
from mailed import open_link, press_as_shown, signed_in
from support import UA_PHONE, browser, login, page

from app.models import LoginSession


@pytest.fixture
def ada(mail_app, smtp):
    return signed_in(mail_app, smtp)


def test_a_disowned_browser_that_signed_in_again_is_signed_out_too(ada, mail_app, smtp):
    """The intruder signs in (announced), then signs in again in the same browser: the first
    session ends as signed out, the second is not announced (the browser is known). The
    owner's "This wasn't me" on the first must not leave the intruder's browser signed in."""
    intruder = browser(mail_app, UA_PHONE)
    assert login(intruder).status_code == 302
    link = smtp.mailbox.about("ada@example.com", "New sign-in").link("/not-me#")
    assert login(intruder).status_code == 302  # same browser, cookies kept: S1 ends, S2 starts
    assert intruder.get("/account").status_code == 200

    shown = page(open_link(ada, link))
    later = LoginSession.select().where(LoginSession.user_agent == UA_PHONE,
                                        LoginSession.ended_at.is_null()).get().public_id
    boxes = {box["value"]: box.has_attr("checked") for box in
             shown.find(attrs={"data-test": "not-me-others"}).find_all("input")}
    press_as_shown(ada, link)
    assert intruder.get("/account").status_code == 302, (
        f"the disowned browser is still signed in (its newer session ticked: {boxes.get(later)})")
