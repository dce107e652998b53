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
