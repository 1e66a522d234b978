from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import InputRequired, Length, ValidationError

from app.accounts import EMAIL_MAX, SITE_NAME, InvalidEmail, normalise_email
from app.passwords import MAX_LENGTH, PasswordRejected, check_policy

# Generous caps on what is read at all; the password policy gives the precise reasons.
_email = [InputRequired("Enter your email address."), Length(max=EMAIL_MAX)]
_password = [InputRequired("Enter your password."), Length(max=MAX_LENGTH * 4)]


def _valid_email(form: FlaskForm, field: EmailField) -> None:
    try:
        field.data = normalise_email(field.data)
    except InvalidEmail as exc:
        raise ValidationError(str(exc)) from None


def _acceptable_password(email_field: str):
    def check(form: FlaskForm, field: PasswordField) -> None:
        email = getattr(form, email_field).data if email_field else form.email_hint
        try:
            check_policy(field.data, context=(email, email.split("@")[0], SITE_NAME))
        except PasswordRejected as exc:
            raise ValidationError(str(exc)) from None

    return check


class RegisterForm(FlaskForm):
    email = EmailField("Email", validators=[*_email, _valid_email])
    password = PasswordField("Password", validators=[*_password, _acceptable_password("email")])


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=_email)
    password = PasswordField("Password", validators=_password)
    next = HiddenField()


class PasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=_password)
    new_password = PasswordField("New password",
                                 validators=[*_password, _acceptable_password("")])

    def __init__(self, email: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.email_hint = email


class ConfirmForm(FlaskForm):
    """A bare CSRF-protected form, with the password when re-authentication is due."""

    password = PasswordField("Your password", validators=[Length(max=MAX_LENGTH * 4)])
