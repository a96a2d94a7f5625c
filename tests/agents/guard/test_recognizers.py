"""Every recognizer: what it must find, and the near misses it must leave alone."""

import pytest

from agentladder.agents.guard.checksums import card_network, card_ok, iban_ok, luhn_ok, ssn_ok
from agentladder.agents.guard.recognizers import (
    Hit,
    addresses,
    cards,
    dates_of_birth,
    emails,
    ibans,
    ips,
    mrns,
    phones,
    resolve_overlaps,
    ssns,
)


def spans(hits, text):
    return [text[h.start:h.end] for h in hits]


def test_luhn_and_card_ranges():
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")
    assert card_network("378282246310005") == "amex" and card_network("5555555555554444") == "mastercard"
    assert card_network("2223003122003222") == "mastercard" and card_network("6011111111111117") == "discover"
    assert card_ok("4012888888881881") and not card_ok("1234567812345670")  # Luhn-valid, no issuer


def test_iban_and_ssn_checks():
    assert iban_ok("GB82WEST12345698765432") and iban_ok("de89370400440532013000")
    assert not iban_ok("GB82WEST12345698765433")  # check digits wrong
    assert not iban_ok("GB82WEST1234569876543")   # one character short for GB
    assert ssn_ok("536", "22", "8471")
    assert not ssn_ok("000", "12", "3456") and not ssn_ok("666", "12", "3456") and not ssn_ok("912", "12", "3456")
    assert not ssn_ok("536", "00", "8471") and not ssn_ok("536", "22", "0000")


@pytest.mark.parametrize(("text", "found"), [
    ("write to jane.doe+rx@mail.example.co.uk today", ["jane.doe+rx@mail.example.co.uk"]),
    ("ops-alerts@company.io, cc: a_b@x.org.", ["ops-alerts@company.io", "a_b@x.org"]),
    ("not an address: user@localhost or @handle or x@y", []),
])
def test_emails(text, found):
    assert spans(emails(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("card 4111 1111 1111 1111 exp 09/27", ["4111 1111 1111 1111"]),
    ("amex 3782-822463-10005 on file", ["3782-822463-10005"]),
    ("paid with 5555555555554444.", ["5555555555554444"]),
    ("reference 4111 1111 1111 1112 is not a card", []),        # fails Luhn
    ("order 1234567812345670 shipped", []),                     # Luhn-valid, no issuer range, no card context
    ("tracking 4111111111111111111111 too long", []),
])
def test_cards(text, found):
    assert spans(cards(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("IBAN GB82 WEST 1234 5698 7654 32, thanks", ["GB82 WEST 1234 5698 7654 32"]),
    ("to DE89370400440532013000 today", ["DE89370400440532013000"]),
    ("FR14 2004 1010 0505 0001 3M02 606", ["FR14 2004 1010 0505 0001 3M02 606"]),
    ("GB82 WEST 1234 5698 7654 33", []),                          # wrong check digits
    ("Chart # MR858468 shows albuterol 500 mg", []),              # lower-case words are no IBAN
])
def test_ibans(text, found):
    assert spans(ibans(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("SSN 536-22-8471 on file", ["536-22-8471"]),
    ("my social security number is 078051120", ["078051120"]),
    ("ssn: 536 22 8471", ["536 22 8471"]),
    ("reference 666-12-3456 and 000-12-3456 and 912-12-3456", []),  # never issued
    ("call 536228471 tomorrow", []),                                 # nine bare digits, no context
    ("part 536-22-84710", []),
])
def test_ssns(text, found):
    assert spans(ssns(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("login from 203.0.113.77 at 3am", ["203.0.113.77"]),
    ("server 2001:db8:85a3::8a2e:370:7334 timed out", ["2001:db8:85a3::8a2e:370:7334"]),
    ("loopback ::1 and fe80::1%eth0", ["::1", "fe80::1%eth0"]),
    ("upgrade to version 10.0.19045.3803 and v1.2.3.4", []),
    ("999.1.1.1 is not an address; neither is 1.2.3", []),
    ("the meeting is at 10:30:00", []),
    ("MAC 00:1A:2B:3C:4D:5E", []),
])
def test_ips(text, found):
    assert spans(ips(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("call me at (415) 555-0132 after 5", ["(415) 555-0132"]),
    ("my new number is +44 7700 900123", ["+44 7700 900123"]),
    ("phone: 020 7946 0958", ["020 7946 0958"]),
    ("reach me on +33 6 12 34 56 78", ["+33 6 12 34 56 78"]),
    ("Invoice INV-2025-51325 is due", []),
    ("the upgrade to build 9.2.28.154 failed", []),
    ("she starts on 03.04.2027", []),
    ("order 1048293847 shipped", []),   # ten digits, no valid area code, no separators, no phone word
])
def test_phones(text, found):
    assert spans(phones(text, ["US", "GB"]), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("Patient born 03/14/1985 picked up lisinopril on 04/02/2024.", ["03/14/1985"]),
    ("DOB: 1979-11-02", ["1979-11-02"]),
    ("date of birth 14th of March 1985", ["14th of March 1985"]),
    ("born on July 5, 1962, seen today", ["July 5, 1962"]),
    ("12.02.1991 (DOB)", ["12.02.1991"]),
    ("appointment on 03/14/2025", []),
    ("born 13/45/1985", []),
])
def test_dates_of_birth(text, found):
    assert spans(dates_of_birth(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("MRN 00457731, allergic to penicillin", ["00457731"]),
    ("medical record number: MR-448120", ["MR-448120"]),
    ("Chart # MR858468 shows", ["MR858468"]),
    ("patient ID is 7731-2290", ["7731-2290"]),
    ("order number 00457731", []),
    ("MRN pending", []),
])
def test_mrns(text, found):
    assert spans(mrns(text), text) == found


@pytest.mark.parametrize(("text", "found"), [
    ("ship to 742 Evergreen Terrace, Springfield, OR 97477 thanks", ["742 Evergreen Terrace, Springfield, OR 97477"]),
    ("22482 Wong Hill Suite 577\nNorth Larrymouth, MT 25147", ["22482 Wong Hill Suite 577\nNorth Larrymouth, MT 25147"]),
    ("Flat 4, 14 Larch Close, Bristol BS7 8QT", ["Flat 4, 14 Larch Close, Bristol BS7 8QT"]),
    ("mailed to USCGC Brown, FPO AE 88318.", ["USCGC Brown, FPO AE 88318"]),
    ("PSC 3617, Box 1520, APO AP 37464", ["PSC 3617, Box 1520, APO AP 37464"]),
    ("the store on Elm Street is closed", []),
    ("a 2 way street", []),
    ("amount 15127 USD. The API key was used", []),
])
def test_addresses(text, found):
    assert spans(addresses(text), text) == found


def test_overlaps_merge_within_a_type_and_the_better_hit_wins_across_types():
    hits = [Hit("ADDRESS", 0, 10, 0.7, "a"), Hit("ADDRESS", 5, 20, 0.85, "b"), Hit("PERSON", 8, 12, 0.8, "c"),
            Hit("PHONE", 30, 40, 0.7, "d"), Hit("MRN", 30, 40, 0.96, "e")]
    assert resolve_overlaps(hits) == [Hit("ADDRESS", 0, 20, 0.85, "b"), Hit("MRN", 30, 40, 0.96, "e")]
