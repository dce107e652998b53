"""One escaped form for text from outside, wherever it is stored, logged or printed."""
import logging

from bridge.domain.ids import escape_unprintable, printable
from bridge.logs import RedactingFilter, escape_controls


def test_unprintable_characters_are_written_as_python_escapes():
    assert escape_unprintable("evt_1\nFORGED\r\x1b[31m") == "evt_1\\nFORGED\\r\\x1b[31m"
    assert escape_unprintable("abc\u202edef\u2028") == "abc\\u202edef\\u2028"  # RTL override, line separator
    assert escape_unprintable("\ud800x") == "\\ud800x"                         # a lone surrogate
    assert escape_unprintable("Zoë pays 49.00 €") == "Zoë pays 49.00 €"        # printable text unchanged


def test_printable_cuts_after_escaping():
    assert printable("\x00" * 10, 6) == "\\x00\\x"
    assert len(printable("x" * 5000)) == 2000


def test_the_log_filter_escapes_the_same_way():
    record = logging.LogRecord("bridge", logging.INFO, __file__, 1, "event %s", ("evt_1\n\u202eFORGED",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == escape_unprintable("event evt_1\n\u202eFORGED") == "event evt_1\\n\\u202eFORGED"
    assert escape_controls("a\tb") == "a\\tb"
