"""The signed-in person's passkeys: the list, adding one (after a recent sign-in), renaming and
removing (after a recent sign-in)."""

from __future__ import annotations

from flask import Response, abort, flash, redirect, render_template, url_for

from app import passkeys, settings, signing_in
from app.account import bp
from app.account.forms import NewPasskeyForm, PasskeyNameForm
from app.middleware import client_ip, current_principal, login_required
from app.reauth import confirmation_required
from app.security import mark_private

NOT_ADDED = "The passkey was not added: its answer did not check out. Try again."


def _page(**extra):
    principal = current_principal()
    return render_template("account/passkeys.html", **{
        "passkeys": passkeys.of_user(principal.user_id), "here": signing_in.on_relying_party(),
        "rp": signing_in.relying_party(), "name_form": PasskeyNameForm(formdata=None),
        "renaming": None, **extra})


def _own(passkey_id: str) -> passkeys.Passkey:
    passkey = passkeys.find(current_principal().user_id, passkey_id)
    if passkey is None:
        abort(404)
    return passkey


@bp.route("/account/passkeys")
@login_required
def passkeys_page():
    return _page()


@bp.route("/account/passkeys/reauth-options", methods=["POST"])
@login_required
def reauth_passkey_options():
    """A challenge for "Confirm it's you" with a passkey, bound to this session."""
    if signing_in.relying_party() is None:
        abort(404)
    mark_private()
    return Response(signing_in.passkey_challenge(passkeys.REAUTH), mimetype="application/json")


@bp.route("/account/passkeys/new", methods=["POST"])
@login_required
@confirmation_required("add a passkey", back="account.passkeys_page")
def new_passkey():
    if not signing_in.on_relying_party():
        return redirect(url_for("account.passkeys_page"))
    return render_template("account/passkey_new.html", form=NewPasskeyForm(formdata=None),
                           options=signing_in.passkey_challenge(passkeys.REGISTER))


@bp.route("/account/passkeys", methods=["POST"])
@login_required
def add_passkey():
    form = NewPasskeyForm()
    if form.validate_on_submit():
        try:
            passkey = signing_in.add_passkey(form.credential.data, form.name.data)
        except passkeys.PasskeyRefused:
            flash(NOT_ADDED, "error")
        else:
            flash(f"Passkey \u201c{passkey.name}\u201d added. It signs you in without your "
                  "password.", "success")
    else:
        flash(NOT_ADDED, "error")
    return redirect(url_for("account.passkeys_page"))


@bp.route("/account/passkeys/<passkey_id>/name", methods=["POST"])
@login_required
def rename_passkey(passkey_id: str):
    passkey, form = _own(passkey_id), PasskeyNameForm()
    if not form.validate_on_submit():
        return _page(name_form=form, renaming=passkey.public_id), 400
    passkeys.rename(passkey, form.name.data, now=settings.now(), ip=client_ip())
    flash("Passkey renamed.", "success")
    return redirect(url_for("account.passkeys_page"))


@bp.route("/account/passkeys/<passkey_id>/remove", methods=["POST"])
@login_required
@confirmation_required("remove that passkey", back="account.passkeys_page")
def remove_passkey(passkey_id: str):
    passkey = _own(passkey_id)
    passkeys.remove(passkey, now=settings.now(), ip=client_ip(),
                    session_id=current_principal().session_id)
    flash(f"Passkey \u201c{passkey.name}\u201d removed. It no longer signs in.", "success")
    return redirect(url_for("account.passkeys_page"))
