"""Review 2 (the thief): someone who knows ada's password, guessing her second step."""

from support import browser, login, signed_up, submit
from test_two_step import at, enter_code, set_up, signed_in_as


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
