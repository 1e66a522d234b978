from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import Length, ValidationError

from app import devices
from app.forms import (
    EMAIL,
    PASSWORD,
    SAME_PASSWORD,
    NewPasswordForm,
    valid_email,
    well_formed,
)
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
