"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi run``."""

from app import create_app
from app.cli import config_errors_reported

with config_errors_reported():
    app = create_app()
