"""The console in a real browser (issue 16): sign in, read a month with known totals, open an
order and see its clauses, approve a review and see the provider refund happen, retry a failed
event, and be refused without a session and without a CSRF token."""
import re

from sqlalchemy import select

from bridge.ledger.models import Job, RefundRequest, WebhookEvent
from tests.fixtures import stripe_payloads as sp
from tests.support.api import token
from tests.support.console import MONTH, T0, seed_march
from tests.browser.conftest import seeder_for, shot, sign_in


def cells(page, provider: str, currency: str) -> list[str]:
    row = page.locator("table.totals tbody tr").filter(has=page.get_by_role("rowheader", name=provider)) \
        .filter(has_text=currency)
    return [c.strip() for c in row.locator("td.num").all_inner_texts()]


def test_sign_in_and_read_the_month(page, shop, fakes, request):
    seed_march(seeder_for(shop, fakes))
    tok = token(shop.rt, "finance:read", name="Fiona (finance)")
    page.goto(f"{shop.url}/console/month?month={MONTH}")
    assert page.url.startswith(f"{shop.url}/console/sign-in")  # no session: the sign-in page
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    shot(page, "01-sign-in", request)
    sign_in(page, shop.url, tok)
    assert page.url == f"{shop.url}/console/month?month={MONTH}"  # back where they were going
    assert page.get_by_role("heading", level=1).inner_text() == "The month: March 2026"
    assert cells(page, "Stripe", "USD") == ["$119.00", "$4.27", "$20.00", "$0.00", "$0.00", "$94.73"]
    assert cells(page, "Stripe", "JPY")[0] == "¥4,900"
    chart = page.get_by_role("img", name=re.compile("Bar chart of USD"))
    chart.scroll_into_view_if_needed()
    assert chart.evaluate("img => img.complete && img.naturalWidth") > 0  # the SVG loaded under the CSP
    assert page.get_by_role("link", name="Review queue").count() == 0  # finance sees no review queue
    disc = page.locator("section", has=page.get_by_role("heading", name=re.compile("Open discrepancies")))
    assert "re_dashboard_x" in disc.inner_text()
    page.reload()  # without the one-time "Signed in" message (this one goes in the README)
    shot(page, "02-month", request)
    # The month picker, by keyboard.
    page.get_by_label("Month").fill("2026-02")
    page.get_by_label("Month").press("Enter")
    page.wait_for_url(re.compile(r"month=2026-02"))
    assert "No ledger entries in February 2026" in page.inner_text("main")
    with page.expect_download() as dl:
        page.goto(f"{shop.url}/console/month?month={MONTH}")
        page.get_by_role("link", name="Download the ledger lines (CSV)").click()
    assert dl.value.suggested_filename == "ledger-2026-03.csv"


def test_search_and_an_order_with_its_clauses(page, shop, fakes, request):
    facts = seed_march(seeder_for(shop, fakes))
    sign_in_to(page, shop, token(shop.rt, "refunds:review", name="Sam (support)"))
    page.get_by_role("link", name="Search").click()
    box = page.get_by_label(re.compile("Order id, customer id or e-mail"))
    box.fill("alice@example.com")
    box.press("Enter")
    page.get_by_role("link", name="ord_a").wait_for()
    shot(page, "03-search", request)
    page.get_by_role("link", name="ord_a").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Order ord_a"
    story = page.locator("ol.timeline")
    text = story.inner_text()
    for clause in facts["approved"]["decision"]["clauses"]:
        assert f"§{clause['section']} {clause['title']}" in text
    assert "Stripe event charge.succeeded" in text and "after a fee of $1.72" in text
    assert re.search(r"2026-03-01 10:00:00 UTC", text)
    shot(page, "04-order", request)


def test_approve_a_review_and_see_the_provider_refund(page, shop, fakes, request):
    stripe, _ = fakes
    facts = seed_march(seeder_for(shop, fakes))
    rr_id = facts["review"]["id"]
    sign_in_to(page, shop, token(shop.rt, "refunds:review", name="Rita (reviews)"))
    assert page.get_by_role("heading", level=1).inner_text() == "Review queue"  # a reviewer's first page
    card = page.locator("article", has=page.get_by_role("heading", name=re.compile(rr_id)))
    assert "$50.00" in card.inner_text()  # the most a review may approve
    shot(page, "05-review", request)
    card.get_by_label("Amount to refund (USD)").fill("40.00")
    card.get_by_label(re.compile("Note")).fill("unused credits")
    card.get_by_role("button", name="Approve this amount").press("Enter")  # by keyboard
    page.get_by_role("status").filter(has_text=f"Refund request {rr_id} approved").wait_for()
    assert "No refund request is waiting for a review." in page.inner_text("main")
    # The worker refunds it at the (fake) provider, which confirms by webhook.
    shop.drain()
    stripe.wait_webhooks()
    shop.drain(until=lambda: _status(shop, rr_id) == "refunded", timeout=30)
    assert stripe.refunded_amount(facts["charge_r"]) == 4000
    page.goto(f"{shop.url}/console/orders/ord_r")
    text = page.locator("ol.timeline").inner_text()
    assert re.search(r"Stripe refund re_\w+", text) and "$40.00, succeeded" in text
    assert f"Review of {rr_id}: approved" in text and "unused credits" in text
    shot(page, "06-order-refunded", request)


def test_retry_a_failed_event(page, make_shop, fakes, request):
    shop = make_shop(job_max_attempts=2)
    seeder = seeder_for(shop, fakes)
    seeder.register("ord_y", "software-mor", [{"item_id": "li_1", "sku": "pro", "category": "license",
                                               "billing": "one_time", "amount": 3000, "price_id": "pri_y"}])
    # The refund's webhook comes before its payment's and waits (parked) until its job gives up.
    refund_event = sp.charge_refunded(charge_id="ch_ord_y", payment_intent_id="pi_ord_y", amount=3000,
                                      charge_created=T0, created=T0 + 86_400, metadata={"order_id": "ord_y"},
                                      refunds=[{"refund_id": "re_y", "amount": 3000, "created": T0 + 86_400}])
    seeder.stripe(refund_event)
    shop.drain(timeout=30)
    with shop.rt.reads() as s:
        ev = s.execute(select(WebhookEvent).where(WebhookEvent.provider_event_id == refund_event["id"])).scalar_one()
        assert ev.status == "parked"
        assert s.execute(select(Job.state).where(Job.ref_id == str(ev.id))).scalar_one() == "dead"
    seeder.pay("ord_y", 3000, 120)  # the payment arrives after all
    sign_in_to(page, shop, token(shop.rt, "admin", name="Ada (operator)"))
    page.get_by_role("link", name="Failed work").click()
    card = page.locator("article[aria-labelledby^=ev-]", has=page.get_by_role("heading", name=re.compile(refund_event["id"])))
    assert "payment not known yet" in card.inner_text()
    card.locator("summary", has_text="Stored payload").click()
    payload = card.locator("pre").inner_text()
    assert '"re_y"' in payload and "Signature" not in card.inner_text()
    shot(page, "07-failed", request)
    card.get_by_role("button", name=f"Retry event {refund_event['id']}").click()
    page.get_by_role("status").filter(has_text="queued for processing again").wait_for()
    shop.drain()
    with shop.rt.reads() as s:
        assert s.get(WebhookEvent, ev.id).status == "processed"
    page.goto(f"{shop.url}/console/orders/ord_y")
    assert "$30.00, succeeded" in page.locator("ol.timeline").inner_text()
    assert page.locator(".facts").get_by_text("refunded").count() == 1


def test_refused_without_a_session_and_without_a_csrf_token(page, browser, shop, fakes, request):
    facts = seed_march(seeder_for(shop, fakes))
    rr_id = facts["review"]["id"]
    page.goto(f"{shop.url}/console/review")
    assert page.url.startswith(f"{shop.url}/console/sign-in")
    sign_in(page, shop.url, token(shop.rt, "admin"))
    assert page.url == f"{shop.url}/console/review"
    # A form without its CSRF token (as a forged cross-site post would be): refused, nothing done.
    card = page.locator("article", has=page.get_by_role("heading", name=re.compile(rr_id)))
    card.locator("input[name=csrf_token]").evaluate("el => el.remove()")
    card.get_by_role("button", name="Approve this amount").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Form refused"
    shot(page, "08-csrf-refused", request)
    assert _status(shop, rr_id) == "review"
    # Another browser (no cookie) gets the sign-in page for every console page.
    other = browser.new_context().new_page()
    for path in ("/console/month", "/console/failed", "/console/orders/ord_a"):
        other.goto(shop.url + path)
        assert "/console/sign-in" in other.url, path
    other.context.close()


def sign_in_to(page, shop, tok):
    page.goto(f"{shop.url}/console/")
    sign_in(page, shop.url, tok)


def _status(shop, rr_id):
    with shop.rt.reads() as s:
        return s.get(RefundRequest, rr_id).status
