from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import InputRequired, Length, ValidationError

from app import devices
from app.forms import (
    EMAIL,
    PASSWORD,
    SAME_PASSWORD,
    NewPasswordForm,
    valid_email,
    well_formed,
)
from app.passkeys import MAX_CREDENTIAL
from app.passkeys import NAME_MAX as PASSKEY_NAME_MAX
from app.passwords import normalise


def _clean(form: FlaskForm, field: StringField) -> None:
    try:
        field.data = devices.clean_name(field.data or "")
    except devices.InvalidName as exc:
        raise ValidationError(str(exc)) from None


class DeviceNameForm(FlaskForm):
    """A device's name; empty takes the name away (the browser's own is shown again)."""

    name = StringField("Name", validators=[Length(max=devices.NAME_MAX * 8), _clean])


class PasswordForm(NewPasswordForm):
    current_password = PasswordField("Current password", validators=PASSWORD)

    def validate_new_password(self, field: PasswordField) -> None:
        # Compared as typed, before any hashing: the current one is checked only after this.
        if normalise(field.data) == normalise(self.current_password.data or ""):
            raise ValidationError(SAME_PASSWORD)


class EmailForm(FlaskForm):
    email = EmailField("New email address", validators=[*EMAIL, well_formed, valid_email])
    current_password = PasswordField("Current password", validators=PASSWORD)


class PasskeyNameForm(FlaskForm):
    """A passkey's name, so that people tell their passkeys apart ("Phone", "Work laptop")."""

    name = StringField("Name", validators=[InputRequired("Give the passkey a name."),
                                           Length(max=PASSKEY_NAME_MAX), well_formed])


class NewPasskeyForm(PasskeyNameForm):
    """The passkey the browser just made (its JSON answer), with its name."""

    credential = HiddenField(validators=[InputRequired(), Length(max=MAX_CREDENTIAL)])


class CodeForm(FlaskForm):
    """A code from the authenticator app, confirming it is set up."""

    code = StringField("Code from the app", validators=[
        InputRequired("Enter the 6-digit code the app shows."), Length(max=16)])
