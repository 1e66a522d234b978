"""Two-step sign-in with an authenticator app: setting it up (after a recent sign-in), the
recovery codes shown once, turning it off (after a recent sign-in)."""

from __future__ import annotations

import segno
from flask import flash, redirect, render_template, url_for

from app import otp, settings, twostep
from app.account import bp
from app.account.forms import CodeForm
from app.middleware import client_ip, current_principal, login_required
from app.reauth import confirmation_required

WRONG_CODE = "That code is not right. Enter the code the app shows now."


@bp.route("/account/two-factor")
@login_required
def two_factor_page():
    user_id = current_principal().user_id
    return render_template("account/two_factor.html", on=twostep.is_on(user_id),
                           left=twostep.recovery_codes_left(user_id))


def _setup_page(form: CodeForm):
    principal = current_principal()
    secret = twostep.unconfirmed_secret(principal.user_id, settings.now())
    uri = otp.provisioning_uri(secret, principal.email, "Gatehouse")
    qr = segno.make(uri, error="m").svg_data_uri(scale=4, border=2)
    spaced = " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))
    return render_template("account/two_factor_setup.html", form=form, qr=qr, key=spaced)


@bp.route("/account/two-factor/setup", methods=["POST"])
@login_required
@confirmation_required("set up two-step sign-in", back="account.two_factor_page")
def two_factor_setup():
    if twostep.is_on(current_principal().user_id):
        return redirect(url_for("account.two_factor_page"))
    return _setup_page(CodeForm(formdata=None))


@bp.route("/account/two-factor/confirm", methods=["POST"])
@login_required
def two_factor_confirm():
    principal, form = current_principal(), CodeForm()
    if twostep.is_on(principal.user_id):
        return redirect(url_for("account.two_factor_page"))
    if form.validate_on_submit():
        codes = twostep.turn_on(principal.user_id, form.code.data, now=settings.now(),
                                ip=client_ip(), session_id=principal.session_id)
        if codes is not None:
            return render_template("account/recovery_codes.html", codes=codes)
        form.code.errors.append(WRONG_CODE)
    return _setup_page(form), 400


@bp.route("/account/two-factor/off", methods=["POST"])
@login_required
@confirmation_required("turn off two-step sign-in", back="account.two_factor_page")
def two_factor_off():
    principal = current_principal()
    twostep.turn_off(principal.user_id, now=settings.now(), ip=client_ip(),
                     session_id=principal.session_id)
    flash("Two-step sign-in is off: signing in with the password no longer asks for a code.",
          "success")
    return redirect(url_for("account.two_factor_page"))
