from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length, ValidationError

from app import devices


def _clean(form: FlaskForm, field: StringField) -> None:
    try:
        field.data = devices.clean_name(field.data or "")
    except devices.InvalidName as exc:
        raise ValidationError(str(exc)) from None


class DeviceNameForm(FlaskForm):
    """A device's name; empty takes the name away (the browser's own is shown again)."""

    name = StringField("Name", validators=[Length(max=devices.NAME_MAX * 8), _clean])
