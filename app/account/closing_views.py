"""Deleting the account, after a recent proof of who the person is."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from app import closing, signing_in
from app.account import bp
from app.middleware import current_principal, device_name, login_required
from app.reauth import confirmation_required
from app.signing_in import origin


@bp.route("/account/delete", methods=["GET"])
@login_required
def delete_page() -> str:
    return render_template("account/delete.html")


@bp.route("/account/delete", methods=["POST"])
@login_required
@confirmation_required("delete your account", back="account.account")
def delete_account() -> Response:
    email = closing.delete_account(current_principal().user_id, device_name=device_name(),
                                   **origin())
    signing_in.forget_deleted()
    flash(f"The account {email} was deleted, and every session with it. We mailed that "
          "address a last message to say so.", "success")
    return redirect(url_for("home.index"))
