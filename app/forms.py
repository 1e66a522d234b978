"""Form pieces every blueprint shares: what an email or password field accepts at all, and a
new password judged against the person's own address."""

from __future__ import annotations

from collections.abc import Callable

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField
from wtforms.validators import InputRequired, Length, StopValidation, ValidationError

from app.addresses import EMAIL_MAX, InvalidEmail, normalise_email
from app.passwords import MAX_LENGTH, PasswordRejected, check_policy
from app.users import SITE_NAME


def well_formed(form: FlaskForm, field: Field) -> None:
    """Refuse text no keyboard typed: a NUL (PostgreSQL cannot store or even compare it) or
    U+FFFD, which is what bytes that were not UTF-8 decode to."""
    if field.data and ("\x00" in field.data or "\ufffd" in field.data):
        raise StopValidation("This contains characters that cannot be used here.")


# Generous caps on what is read at all; the password policy gives the precise reasons.
# Sign-in reads these as they are (any failure there is the one generic message); what is
# stored or checked against a policy must also be well formed.
SAME_PASSWORD = "Choose a password different from your current one."
EMAIL = [InputRequired("Enter your email address."), Length(max=EMAIL_MAX)]
PASSWORD = [InputRequired("Enter your password."), Length(max=MAX_LENGTH * 4)]


def valid_email(form: FlaskForm, field: EmailField) -> None:
    try:
        field.data = normalise_email(field.data)
    except InvalidEmail as exc:
        raise ValidationError(str(exc)) from None


def acceptable_password(email_field: str) -> Callable[[FlaskForm, PasswordField], None]:
    """The password policy, with the address in ``email_field`` (or the form's
    ``email_hint``) as what the password must not be."""
    def check(form: FlaskForm, field: PasswordField) -> None:
        email = getattr(form, email_field).data if email_field else form.email_hint
        try:
            check_policy(field.data, context=(email, email.split("@")[0], SITE_NAME))
        except PasswordRejected as exc:
            raise ValidationError(str(exc)) from None

    return check


class NewPasswordForm(FlaskForm):
    """A new password, judged against the person's own address (``email``)."""

    new_password = PasswordField("New password",
                                 validators=[*PASSWORD, well_formed, acceptable_password("")])

    def __init__(self, email: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.email_hint = email


class ButtonForm(FlaskForm):
    """The page a mailed link opens: one button, so that only a person's POST acts on it."""
