"""Review 2 (the thief): what anyone on the internet can do to the operators' tools."""

from test_metrics import TOKEN, scrape


def test_request_methods_do_not_mint_new_metric_series(make_app):
    """"Every label has a few known values". The request histogram's ``method`` label is the
    raw request method, so each made-up method (gunicorn accepts any 3 to 20 capitals) is a
    new series: in every worker's memory, in the multiprocess files and in Prometheus, from
    anonymous requests."""
    client = make_app(GATEHOUSE_METRICS_TOKEN=TOKEN).test_client()
    made_up = [f"ZZ{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(40)]
    for method in made_up:
        client.open("/login", method=method)
    text = scrape(client).get_data(as_text=True)
    minted = [m for m in made_up if f'method="{m}"' in text]
    assert minted == [], f"{len(minted)} series minted by anonymous requests"
