"""Gatehouse as deployed (``create_app()`` from the environment), plus one page for the
benchmark: behind ``login_required``, returning the same small HTML as the bare route, so that
the difference between the two is what authentication costs."""

from app import create_app
from app.middleware import login_required
from bench.bare import index

app = create_app()
app.add_url_rule("/bench/page", "bench_page", login_required(index))
