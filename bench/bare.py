"""The yardstick: a bare Flask route returning a small HTML string, served the same way.

``/hardened`` is the same page carrying what every signed-in Gatehouse response carries anyway
(the security headers, ``no-store``, ``Vary: Cookie``), driven with a signed-in browser's
cookies but authenticating nothing: it separates what those cost from what authentication does.
"""

from flask import Flask

from app.security import HEADERS

app = Flask(__name__)
HARDENED = {**HEADERS, "Cache-Control": "no-store", "Vary": "Cookie"}


@app.get("/")
def index() -> str:
    return "<!doctype html><title>bare</title><p>Hello from a bare Flask route.</p>"


@app.get("/hardened")
def hardened():
    return index(), 200, HARDENED
