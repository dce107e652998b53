"""``GET /api/v1/reconciliation?format=csv&units=major``: the ledger lines for accountants, each
amount in its currency's major unit (decimals by the ISO exponent); the JSON and the default
CSV stay in integer minor units; an unknown ``units`` is a 422 naming the parameter."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

from bridge.ledger import entries
from tests.support.api import auth, token

MARCH = "/api/v1/reconciliation?from=2026-03-01&to=2026-04-01"
# provider_ref -> (kind, signed minor amount, currency, what an accountant reads)
BOOKED = {
    "ch_usd": ("sale", 4900, "USD", "49.00"),
    "fee_usd": ("fee", -172, "USD", "-1.72"),
    "re_usd": ("refund", -5, "USD", "-0.05"),
    "ch_jpy": ("sale", 4900, "JPY", "4900"),
    "re_jpy": ("refund", -4900, "JPY", "-4900"),
    "ch_kwd": ("sale", 1234, "KWD", "1.234"),
    "fee_kwd": ("fee", -7, "KWD", "-0.007"),
    "ch_bhd": ("sale", 100000, "BHD", "100.000"),
}


def book(runtime):
    at = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
    with runtime.sessions.begin() as s:
        for ref, (kind, amount, currency, _) in BOOKED.items():
            entries.post(s, provider="stripe", kind=kind, magnitude=abs(amount), currency=currency,
                         occurred_at=at, effect_key=f"test:{ref}", now=at, provider_ref=ref)


def rows(resp) -> dict[str, dict]:
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "text/csv"
    return {r["provider_ref"]: r for r in csv.DictReader(io.StringIO(resp.get_data(as_text=True)))}


def test_major_units_csv_has_decimals_by_the_currency_exponent(client, runtime):
    book(runtime)
    fin = auth(token(runtime, "finance:read"))
    major = rows(client.get(MARCH + "&format=csv&units=major", headers=fin))
    assert {ref: (r["kind"], r["amount"], r["currency"]) for ref, r in major.items()} == {
        ref: (kind, text, currency) for ref, (kind, _, currency, text) in BOOKED.items()}
    # The default CSV, and units=minor, are the integers the JSON totals add up.
    for url in (MARCH + "&format=csv", MARCH + "&format=csv&units=minor"):
        minor = rows(client.get(url, headers=fin))
        assert {ref: int(r["amount"]) for ref, r in minor.items()} == {ref: b[1] for ref, b in BOOKED.items()}
    # Chosen by the Accept header instead of format=csv: the same major-unit CSV.
    assert rows(client.get(MARCH + "&units=major", headers={**fin, "Accept": "text/csv"})) == major
    body = client.get(MARCH, headers=fin).get_json()
    totals = {t["currency"]: t for t in body["totals"]}
    assert (totals["USD"]["gross"], totals["USD"]["fees"], totals["USD"]["net"]) == (4900, 172, 4723)
    assert (totals["JPY"]["net"], totals["KWD"]["net"], totals["BHD"]["net"]) == (0, 1227, 100000)


def test_unknown_units_or_major_units_in_json_is_a_422_naming_units(client, runtime):
    fin = auth(token(runtime, "finance:read"))
    for query in ("&format=csv&units=cents", "&format=csv&units=MAJOR", "&format=csv&units=", "&units=major",
                  "&format=json&units=major"):
        r = client.get(MARCH + query, headers=fin)
        assert r.status_code == 422, (query, r.get_data(as_text=True))
        err = r.get_json()["error"]
        assert err["field"] == "units" and err["message"].startswith("units:"), (query, err)
