"""Administrator commands: ``users show|lock|unlock``, ``sessions list|end-all``. Each acts
through the session store (the person's next request is refused), is an event the person sees,
is mailed to them, and prints one line."""

from __future__ import annotations

import mailed
from support import PASSWORD, browser, login, signed_up, submit

from app.models import LoginSession, SecurityEvent, User
from app.sessions import rules

ADA = "ada@example.com"


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def two_browsers(app):
    first, second = browser(app), browser(app)
    signed_up(first)
    assert login(second).status_code == 302
    return first, second


def test_lock_ends_every_session_at_once_and_refuses_the_right_password(app):
    first, second = two_browsers(app)
    result = run(app, "users", "lock", ADA, "--reason", "Chargeback fraud, ticket 4411")
    assert result.exit_code == 0, result.stdout
    assert result.stdout == f"Locked {ADA}; ended 2 sessions.\n"
    for each in (first, second):  # the very next request, without a database lookup trick
        assert each.get("/api/me").status_code == 401
    ended = {s.end_reason for s in LoginSession.select()}
    assert ended == {rules.ADMIN}
    refused = login(browser(app))  # the same neutral answer as a wrong password
    wrong = login(browser(app), password="not the right password at all")
    assert refused.status_code == wrong.status_code == 401
    assert "don&#39;t match an account" in refused.get_data(as_text=True)
    locked = SecurityEvent.select().where(SecurityEvent.kind == "admin_locked").get()
    assert locked.detail == "Chargeback fraud, ticket 4411"


def test_the_person_sees_ended_by_an_administrator(app):
    first, _ = two_browsers(app)
    assert run(app, "sessions", "end-all", ADA).stdout == f"Ended 2 sessions of {ADA}.\n"
    again = browser(app)
    assert login(again).status_code == 302  # end-all does not lock
    page = again.get("/sessions").get_data(as_text=True)
    assert "Ended by an administrator" in page
    session = LoginSession.select().where(LoginSession.end_reason == rules.ADMIN).first()
    timeline = again.get(f"/sessions/{session.public_id}").get_data(as_text=True)
    assert "an administrator ended it" in timeline or "Ended by an administrator" in timeline


def test_unlock_lets_the_person_sign_in_again(app):
    signed_up(browser(app))
    run(app, "users", "lock", ADA, "--reason", "checking")
    assert run(app, "users", "unlock", ADA).stdout == f"Unlocked {ADA}.\n"
    assert run(app, "users", "unlock", ADA).stdout == f"{ADA} was not locked.\n"
    assert login(browser(app), ADA, PASSWORD).status_code == 302
    assert User.get().locked_at is None


def test_show_and_list_print_the_account_and_its_live_sessions(app):
    two_browsers(app)
    shown = run(app, "users", "show", ADA)
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"{ADA} (id ") and ": active;" in lines[0]
    assert lines[1] == "2 live sessions"
    publics = {s.public_id for s in LoginSession.select()}
    assert {line.split()[0] for line in lines[2:]} == publics
    run(app, "users", "lock", ADA, "--reason", "abuse")
    assert "locked since" in run(app, "users", "show", ADA).stdout
    assert run(app, "sessions", "list", ADA).stdout == "0 live sessions\n"


def test_an_unknown_address_is_one_line_and_exit_1(app):
    result = run(app, "users", "lock", "nobody@example.com", "--reason", "x")
    assert result.exit_code == 1
    assert "No account has the address nobody@example.com." in result.output


def verified(app, smtp):
    """ada, registered and confirmed through the mailed link (signed in by it)."""
    return mailed.signed_in(app, smtp)


def test_each_command_mails_the_person(mail_app, smtp):
    verified(mail_app, smtp)
    before = len(smtp.mailbox.wait_for(ADA))
    run(mail_app, "users", "lock", ADA, "--reason", "Suspicious payments")
    run(mail_app, "users", "unlock", ADA)
    run(mail_app, "sessions", "end-all", ADA)  # nothing live: no mail
    assert login(browser(mail_app)).status_code == 302
    run(mail_app, "sessions", "end-all", ADA)
    got = [m for m in smtp.mailbox.wait_for(ADA, before + 4)[before:]
           if not m.subject.startswith("New sign-in")]
    assert [m.subject for m in got] == ["Your account was locked", "Your account was unlocked",
                                        "Your sessions were signed out"]
    assert "Suspicious payments" in got[0].text and "contact us" in got[0].text


def test_a_locked_account_cannot_sign_in_through_a_reset_link(mail_app, smtp):
    verified(mail_app, smtp)
    run(mail_app, "users", "lock", ADA, "--reason", "abuse")
    visitor = browser(mail_app)
    submit(visitor, "/password/forgot", {"email": ADA})
    link = smtp.mailbox.about(ADA, "Reset your password").link("/password/reset#")
    reply = mailed.press(visitor, link, new_password="a brand new long passphrase")
    assert reply.status_code == 403
    assert "This account is locked" in reply.get_data(as_text=True)
    assert visitor.get("/api/me").status_code == 401
