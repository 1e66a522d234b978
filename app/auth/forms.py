from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from app.forms import EMAIL, PASSWORD, acceptable_password, valid_email, well_formed
from app.passkeys import MAX_CREDENTIAL


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


class PasskeySignInForm(FlaskForm):
    """A passkey's answer to this browser's challenge (JSON, filled in by static/passkeys.js)."""

    credential = HiddenField(validators=[InputRequired(), Length(max=MAX_CREDENTIAL)])
    next = HiddenField()


class SecondStepForm(FlaskForm):
    """The second step of a sign-in: a code from the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[
        InputRequired("Enter the code from your authenticator app, or a recovery code."),
        Length(max=32)])
