"""Review 2 (the thief): someone who knows ada's password, guessing her second step."""

from mailed import press
from support import PUBLIC_URL, browser, login, signed_up, submit
from test_two_step import at, enter_code, set_up, signed_in_as

LOCKED = "Your account was locked after failed sign-ins"


def test_codes_have_the_passwords_cap_of_consecutive_failures(make_app, clock):
    """"Codes are throttled like passwords": a password has, besides the per-window limit,
    a cap of 100 consecutive failures per account (NIST SP 800-63B 5.2.2, which names
    one-time codes too). The code step has only the window, so a thief who knows the
    password guesses codes forever, a window's worth at a time, from as many addresses as
    they like: with the defaults (10 per 15 minutes) about 960 guesses a day."""
    app = make_app(GATEHOUSE_LOGIN_LIMIT_ACCOUNT=25, GATEHOUSE_LOGIN_LIMIT_WINDOW=60)
    owner = browser(app)
    signed_up(owner)
    totp, _ = set_up(owner, clock)
    clock.advance(30)
    submit(owner, "/logout", {}, form_page="/account")
    for round_ in range(4):  # 100 consecutive wrong codes, four windows, four addresses
        thief = browser(app)
        thief.environ_base["REMOTE_ADDR"] = f"198.51.100.{10 + round_}"
        login(thief)
        for _ in range(25):
            assert enter_code(thief, "000000").status_code == 401
        clock.advance(61)
    thief = browser(app)
    thief.environ_base["REMOTE_ADDR"] = "198.51.100.99"
    login(thief)
    answer = enter_code(thief, at(totp, clock))
    assert answer.status_code == 429, "the 101st guess in a row is still judged"
    assert signed_in_as(thief) is None


def wrong_codes(app, count: int, address: str = "198.51.100.7") -> list[int]:
    thief = browser(app)
    thief.environ_base["REMOTE_ADDR"] = address
    login(thief)
    return [enter_code(thief, "000000").status_code for _ in range(count)]


def test_a_right_code_sets_the_cap_back_and_its_lock_mails_a_way_out(make_app, smtp, clock):
    """99 wrong codes, then the owner's right one: the count starts again. The 100th in a row
    locks the code step; the owner is mailed that the password is known, with the unlock
    link, which lifts the lock."""
    app = make_app(GATEHOUSE_SMTP_URL=smtp.url, GATEHOUSE_PUBLIC_URL=PUBLIC_URL,
                   GATEHOUSE_LOGIN_LIMIT_ACCOUNT=200, GATEHOUSE_LOGIN_LIMIT_IP=1000)
    try:
        owner = browser(app)
        signed_up(owner)
        totp, _ = set_up(owner, clock)
        clock.advance(30)
        submit(owner, "/logout", {}, form_page="/account")
        assert wrong_codes(app, 99) == [401] * 99
        login(owner)
        assert enter_code(owner, at(totp, clock)).status_code == 302
        submit(owner, "/logout", {}, form_page="/account")
        assert wrong_codes(app, 101) == [401] * 100 + [429]
        mail = smtp.mailbox.about("ada@example.com", LOCKED)
        assert "wrong codes" in mail.text and "knows your password" in mail.text
        login(owner)
        assert enter_code(owner, at(totp, clock, 1)).status_code == 429
        assert press(owner, mail.link("/unlock#")).status_code == 302
        login(owner)
        assert enter_code(owner, at(totp, clock, 1)).status_code == 302
    finally:
        app.extensions["gatehouse_mail"].dispatcher.stop()
