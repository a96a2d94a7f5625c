"""Spans stay right in characters under any Unicode; masking is consistent within a conversation."""

import random

import pytest

from agentladder.agents.guard import Guard
from agentladder.agents.guard.masking import Placeholders, canonical
from agentladder.agents.guard.text import TextView, windows

PATTERNS_ONLY = {"pii": {"ner": "none"}}


def found(result, text):
    return [(f.type, text[f.start:f.end]) for f in result.findings]


@pytest.mark.parametrize(("text", "expected"), [
    ("👋😊 card 4111 1111 1111 1111 📱", [("CREDIT_CARD", "4111 1111 1111 1111")]),
    ("my card is 4242\u200b4242\u200b4242\u200b4242 (split)", [("CREDIT_CARD", "4242\u200b4242\u200b4242\u200b4242")]),
    ("SSN 412-\u200b55-\u200b0193 ok", [("SSN", "412-\u200b55-\u200b0193")]),
    ("رقم هاتفي +971 50 123 4567 وبريدي omar.h@example.ae شكرا",
     [("PHONE", "+971 50 123 4567"), ("EMAIL", "omar.h@example.ae")]),
    ("\u202d4000 0566 5566 5556\u202c charged", [("CREDIT_CARD", "4000 0566 5566 5556")]),
    ("IBAN ＧＢ２９ ＮＷＢＫ ６０１６ １３３１ ９２６８ １９ typed wide",
     [("IBAN", "ＧＢ２９ ＮＷＢＫ ６０１６ １３３１ ９２６８ １９")]),
    ("call ٤١٥-٥٥٥-٠١٣٢ please", [("PHONE", "٤١٥-٥٥٥-٠١٣٢")]),  # Arabic-Indic digits
    ("Jose\u0301 e\u0301crit a\u0300 jose\u0301@mail.com", [("EMAIL", "jose\u0301@mail.com")]),
])
def test_spans_are_characters_of_the_original_text(text, expected):
    result = Guard(PATTERNS_ONLY).check(text)
    assert found(result, text) == expected
    for f in result.findings:
        assert f"<{f.type}>" in result.text
    assert not any(value in result.text for _, value in expected)


def test_the_view_maps_back_and_keeps_combining_marks():
    text = "a\u200bb\u0301c"
    view = TextView.of(text)
    assert view.view == "ab\u0301c"
    assert view.span(0, 2) == (0, 4)          # "a", the invisible space, "b" and its accent
    assert TextView.of("plain").span(1, 3) == (1, 3)


def test_large_and_hostile_texts_do_not_crash():
    guard = Guard(PATTERNS_ONLY)
    rng = random.Random(0)
    big = " ".join(rng.choice(["word", "4111", "-", "1.2", "@", "x@y.z", "\u200b", "٣", "📱", "123-45-6789"])
                   for _ in range(60_000))
    result = guard.check(big + " card 4111 1111 1111 1111")
    assert result.text.endswith("card <CREDIT_CARD>")
    for s in ["", "\u200b" * 1000, "\u0301" * 500, "9" * 100_000, "a@" * 20_000, "(" * 5000, "\ufffd" * 50]:
        assert isinstance(guard.check(s).text, str)


def test_windows_cover_the_text_with_overlap():
    text = " ".join(f"w{i}" for i in range(3000))
    pieces = list(windows(text, 500, 100))
    assert pieces[0][0] == 0 and all(len(p) <= 500 for _, p in pieces)
    assert pieces[-1][0] + len(pieces[-1][1]) == len(text)
    for (a, pa), (b, _) in zip(pieces, pieces[1:], strict=False):
        assert a + len(pa) - b >= 100  # neighbours share at least the overlap


def test_replace_is_consistent_within_a_conversation_and_fresh_across():
    guard = Guard({"pii": {"ner": "none", "action": "replace"}})
    a1 = guard.check("email jane@x.org or call +1 415 555 0132", conversation_id="c1")
    a2 = guard.check("again: JANE@X.ORG, then bob@y.org, then (415) 555-0132", conversation_id="c1")
    b1 = guard.check("bob@y.org", conversation_id="c2")
    assert a1.text == "email <EMAIL_1> or call <PHONE_1>"
    assert a2.text == "again: <EMAIL_1>, then <EMAIL_2>, then <PHONE_1>"
    assert b1.text == "<EMAIL_1>"


def test_same_person_keeps_a_placeholder_and_nothing_stores_the_value():
    table = Placeholders()
    assert table.placeholder("c", "PERSON", "Jane Roe") == "<PERSON_1>"
    assert table.placeholder("c", "PERSON", "John Smith") == "<PERSON_2>"
    assert table.placeholder("c", "PERSON", "Mrs. Roe") == "<PERSON_1>"   # surname of exactly one person
    assert table.placeholder("c", "PERSON", "jane  roe") == "<PERSON_1>"
    assert table.placeholder("c", "PERSON", "Ana Smith") == "<PERSON_3>"
    assert table.placeholder("c", "PERSON", "Smith") == "<PERSON_4>"      # two Smiths: not guessed
    assert "Roe" not in repr(table._tables) and "roe" not in repr(table._tables)
    assert canonical("PHONE", "+1 (415) 555-0132") == canonical("PHONE", "+14155550132")


def test_block_action_and_per_type_actions():
    guard = Guard({"name": "strict", "pii": {"ner": "none", "action": "mask", "actions": {"SSN": "block"}}})
    ok = guard.check("email a@b.org")
    assert not ok.blocked and ok.text == "email <EMAIL>"
    blocked = guard.check("SSN 536-22-8471 and a@b.org")
    assert blocked.blocked and blocked.rule == "pii.ssn.ranges"
    assert blocked.text == "SSN <SSN> and <EMAIL>"   # what may be recorded is masked even when blocked
    assert "536" not in str(blocked.audit_data()) and "536" not in (blocked.message or "")
    assert guard.usage().blocked == 1 and guard.usage().masked == 3
