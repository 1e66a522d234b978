from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, HiddenField, PasswordField
from wtforms.validators import InputRequired, Length, StopValidation, ValidationError

from app.addresses import EMAIL_MAX, InvalidEmail, normalise_email
from app.passwords import MAX_LENGTH, PasswordRejected, check_policy, normalise
from app.users import SITE_NAME


def _well_formed(form: FlaskForm, field: Field) -> None:
    """Refuse text no keyboard typed: a NUL (PostgreSQL cannot store or even compare it) or
    U+FFFD, which is what bytes that were not UTF-8 decode to."""
    if field.data and ("\x00" in field.data or "\ufffd" in field.data):
        raise StopValidation("This contains characters that cannot be used here.")


# Generous caps on what is read at all; the password policy gives the precise reasons.
# Sign-in reads these as they are (any failure there is the one generic message); what is
# stored or checked against a policy must also be well formed.
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
    email = EmailField("Email", validators=[*_email, _well_formed, _valid_email])
    password = PasswordField("Password", validators=[*_password, _well_formed,
                                                     _acceptable_password("email")])


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=_email)
    password = PasswordField("Password", validators=_password)
    next = HiddenField()


class ForgotForm(FlaskForm):
    email = EmailField("Email", validators=_email)


class NewPasswordForm(FlaskForm):
    """A new password, judged against the person's own address (``email``)."""

    new_password = PasswordField("New password",
                                 validators=[*_password, _well_formed, _acceptable_password("")])

    def __init__(self, email: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.email_hint = email


SAME_PASSWORD = "Choose a password different from your current one."


class PasswordForm(NewPasswordForm):
    current_password = PasswordField("Current password", validators=_password)

    def validate_new_password(self, field: PasswordField) -> None:
        # Compared as typed, before any hashing: the current one is checked only after this.
        if normalise(field.data) == normalise(self.current_password.data or ""):
            raise ValidationError(SAME_PASSWORD)


class EmailForm(FlaskForm):
    email = EmailField("New email address", validators=[*_email, _well_formed, _valid_email])
    current_password = PasswordField("Current password", validators=_password)


class ButtonForm(FlaskForm):
    """The page a mailed link opens: one button, so that only a person's POST acts on it."""


class VerifyForm(FlaskForm):
    """Confirming an address: the link proves the mailbox, the password who registered."""

    password = PasswordField("Password", validators=_password)


class ReauthForm(FlaskForm):
    """The "Confirm it's you" page: the password, before a sensitive action goes ahead."""

    password = PasswordField("Your password", validators=[*_password, _well_formed])
