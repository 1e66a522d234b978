"""The yardstick: a bare Flask route returning a small HTML string, served the same way."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return "<!doctype html><title>bare</title><p>Hello from a bare Flask route.</p>"
