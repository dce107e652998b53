"""``bridge demo`` plays its shop's day to the end and tells the truth about it."""
import io

from bridge.demo import run_demo


def test_demo_runs_end_to_end():
    out = io.StringIO()
    assert run_demo(out=out) == 0
    text = out.getvalue()
    assert "demo-A  approved      47.28 USD  fee kept 1.72 USD" in text
    assert "demo-C  approved    1180.27 USD" in text  # floor(120000 * 359 / 365)
    assert "demo-D  denied" in text and "demo-E  denied" in text and "demo-G  review" in text
    assert "refunds executed at the fakes: Stripe 3, Paddle 2" in text
    assert "demo-B  request refunded  paddle" in text
    # What can follow a sale: a quote that stores nothing, a dispute suspending then reinstating
    # a license, a fraud warning decided by the order's policy.
    assert "demo-H  quote before asking: approved 47.28 USD" in text and "(nothing stored: 0 requests)" in text
    assert "demo-H  dispute open (fraudulent), 49.00 USD and a 15.00 USD fee withdrawn: license li_1 suspended" in text
    assert "demo-H  dispute won, money reinstated: license li_1 active" in text
    assert "demo-I  early fraud warning: refund request review (review), cites software-mor §6" in text
    assert ", until 20" in text  # the quote's deadline
    # The month closed against the provider's own record.
    assert "its webhook was lost (order awaiting_payment)" in text
    assert "1 new (charge.succeeded 1)" in text and "demo-L now paid" in text
    assert "unexplained 0.00 USD" in text and "lines in the ledger" in text
    closing = next(line for line in text.splitlines() if "unexplained" in line)
    n_linked, n_lines = closing.split("(")[-1].split(" lines")[0].split(" of ")
    assert n_linked == n_lines
    assert "discrepancies left for a person: refund_without_decision demo-L" in text
