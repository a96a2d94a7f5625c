"""Checksums and ranges that tell a real identifier from a number that only looks like one.

- Luhn's mod-10 check (ISO/IEC 7812-1, annex B) for payment card numbers, with the issuer
  prefixes and lengths the networks publish;
- the IBAN's ISO 7064 mod 97-10 check (ISO 13616-1) and each country's IBAN length;
- the US Social Security number's ranges (SSA: area 000, 666 and 900-999, group 00 and
  serial 0000 are never issued).
"""

from __future__ import annotations

import re


def luhn_ok(digits: str) -> bool:
    """Whether ``digits`` (only 0-9) pass Luhn's check: double every second digit from the right, sum mod 10 is 0."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CARD_PREFIXES: tuple[tuple[tuple[int, int], tuple[int, ...], str], ...] = (
    ((4, 4), (13, 16, 19), "visa"),
    ((51, 55), (16,), "mastercard"),
    ((2221, 2720), (16,), "mastercard"),
    ((34, 34), (15,), "amex"),
    ((37, 37), (15,), "amex"),
    ((300, 305), (14, 16, 19), "diners"),
    ((36, 36), (14, 16, 19), "diners"),
    ((38, 39), (14, 16, 19), "diners"),
    ((6011, 6011), (16, 19), "discover"),
    ((644, 649), (16, 19), "discover"),
    ((65, 65), (16, 19), "discover"),
    ((3528, 3589), (16, 17, 18, 19), "jcb"),
    ((62, 62), (16, 17, 18, 19), "unionpay"),
    ((50, 50), (12, 13, 14, 15, 16, 17, 18, 19), "maestro"),
    ((56, 58), (12, 13, 14, 15, 16, 17, 18, 19), "maestro"),
    ((6304, 6304), (16, 18, 19), "maestro"),
    ((67, 67), (12, 13, 14, 15, 16, 17, 18, 19), "maestro"),
)
"""``((first prefix, last prefix), lengths, network)``: the issuer ranges of ISO/IEC 7812 the networks publish."""


def card_network(digits: str) -> str | None:
    """The card network whose issuer range and length fit ``digits``, or ``None``."""
    for (lo, hi), lengths, network in _CARD_PREFIXES:
        width = len(str(lo))
        if len(digits) in lengths and lo <= int(digits[:width]) <= hi:
            return network
    return None


def card_ok(digits: str) -> bool:
    """A payment card number: 12-19 digits, a known issuer range and length, and Luhn's check."""
    return 12 <= len(digits) <= 19 and card_network(digits) is not None and luhn_ok(digits)


IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25,
    "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27,
    "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}
"""IBAN length per country (the SWIFT IBAN registry)."""


def iban_ok(iban: str) -> bool:
    """An IBAN (no spaces, any case): its country's length and the mod 97-10 check (remainder 1)."""
    iban = iban.upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]+", iban) or IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    moved = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """A US Social Security number the SSA can have issued (area, group and serial ranges)."""
    a = int(area)
    return a != 0 and a != 666 and a < 900 and int(group) != 0 and int(serial) != 0
