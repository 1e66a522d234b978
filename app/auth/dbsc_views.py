"""Device Bound Session Credentials: the two endpoints a DBSC browser calls by itself (the work
is ``app.binding``'s). Neither takes a form: the browser posts an empty body with a signed
proof in a header, so neither has a CSRF token to check; each acts only on the session the
request's own cookies name."""

from __future__ import annotations

from app import binding, keyproofs
from app.auth import bp
from app.middleware import authenticates_itself
from app.security import csrf


@bp.post(keyproofs.REGISTER_PATH)
@csrf.exempt
def dbsc_register():
    return binding.register()


@bp.post(keyproofs.REFRESH_PATH)
@csrf.exempt
@authenticates_itself
def dbsc_refresh():
    return binding.refresh()
