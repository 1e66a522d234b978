from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField

from app.forms import EMAIL, PASSWORD, acceptable_password, valid_email, well_formed


class RegisterForm(FlaskForm):
    email = EmailField("Email", validators=[*EMAIL, well_formed, valid_email])
    password = PasswordField("Password", validators=[*PASSWORD, well_formed,
                                                     acceptable_password("email")])


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=EMAIL)
    password = PasswordField("Password", validators=PASSWORD)
    next = HiddenField()


class ForgotForm(FlaskForm):
    email = EmailField("Email", validators=EMAIL)


class VerifyForm(FlaskForm):
    """Confirming an address: the link proves the mailbox, the password who registered."""

    password = PasswordField("Password", validators=PASSWORD)
