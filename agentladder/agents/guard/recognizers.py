"""Deterministic recognizers for structured personal identifiers.

Each recognizer reads the detectors' view of a text (:class:`~agentladder.agents.guard.text.TextView`)
and returns :class:`Hit` s: an entity type, a span of the view, a score in [0, 1] and the
rule that fired. A pattern only proposes a candidate; the candidate is kept when its
checksum or range holds (cards: issuer range and Luhn; IBAN: country length and mod 97;
SSN: the ranges the SSA issues; IP: :mod:`ipaddress`; phone numbers: Google's
libphonenumber through :mod:`phonenumbers`) or, for identifiers with no checksum, when
a context word says what it is (a date is a date of birth only near "born", "DOB", ...;
a record number only after "MRN", "medical record", ...).

Patterns are written so that no input makes them backtrack without bound: every
repetition is bounded or over a class that its neighbour cannot match.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import phonenumbers

from agentladder.agents.guard.checksums import card_ok, iban_ok, luhn_ok, ssn_ok


class Hit(NamedTuple):
    """A candidate entity in a view: type, ``[start, end)``, score and the rule that fired."""

    type: str
    start: int
    end: int
    score: float
    rule: str


def _context(view: str, start: int, words: re.Pattern[str], before: int = 48, after: int = 0,
             end: int | None = None) -> bool:
    """Whether ``words`` occurs in the ``before`` characters before ``start`` (or ``after`` past ``end``)."""
    if words.search(view, max(0, start - before), start):
        return True
    if after and end is not None:
        return bool(words.search(view, end, min(len(view), end + after)))
    return False


# -- e-mail --------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.+\u0300-\u036f-])[\w.+%\u0300-\u036f-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.){1,8}[A-Za-z]{2,24}(?![\w-])")


def emails(view: str) -> list[Hit]:
    out = []
    for m in _EMAIL.finditer(view):
        local = m.group().split("@", 1)[0]
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        out.append(Hit("EMAIL", m.start(), m.end(), 1.0, "pii.email.pattern"))
    return out


# -- payment cards -------------------------------------------------------------------------------
_CARD = re.compile(r"(?<![\w-])\d(?:[ -]?\d){11,18}(?![\w-]|[ -]\d)")
_CARD_CONTEXT = re.compile(r"(?i)\b(?:card|visa|master ?card|amex|american express|discover|credit|debit|cc|pan)\b")


def cards(view: str) -> list[Hit]:
    out = []
    for m in _CARD.finditer(view):
        digits = re.sub(r"\D", "", m.group())
        context = _context(view, m.start(), _CARD_CONTEXT, 64)
        if card_ok(digits):
            out.append(Hit("CREDIT_CARD", m.start(), m.end(), 1.0 if context else 0.9, "pii.credit_card.luhn"))
        elif context and 13 <= len(digits) <= 19 and luhn_ok(digits):  # an issuer range we do not list
            out.append(Hit("CREDIT_CARD", m.start(), m.end(), 0.8, "pii.credit_card.luhn_context"))
    return out


# -- IBAN ----------------------------------------------------------------------------------------
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?)(?![A-Za-z0-9])")


def ibans(view: str) -> list[Hit]:
    out = []
    for m in _IBAN.finditer(view):
        text = m.group()
        # the pattern is greedy: try the longest run of groups first, then shorter ones
        parts = text.split(" ")
        for k in range(len(parts), 0, -1):
            candidate = " ".join(parts[:k])
            if iban_ok(candidate.replace(" ", "")):
                out.append(Hit("IBAN", m.start(), m.start() + len(candidate), 1.0, "pii.iban.mod97"))
                break
    return out


# -- US Social Security numbers -----------------------------------------------------------------
_SSN = re.compile(r"(?<![\w-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w-]|[ -]\d)")
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|ss#|ss no|social security|social sec|soc\.? sec|taxpayer|tin)\b")


def ssns(view: str) -> list[Hit]:
    out = []
    for m in _SSN.finditer(view):
        area, sep, group, serial = m.groups()
        if not ssn_ok(area, group, serial):
            continue
        context = _context(view, m.start(), _SSN_CONTEXT, 48)
        if sep == "-" or context:
            out.append(Hit("SSN", m.start(), m.end(), 1.0 if context else 0.85, "pii.ssn.ranges"))
    return out


# -- IP addresses --------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\.?\w)")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:%\w{1,16})?(?![\w:])")
_VERSION = re.compile(r"(?i)(?:\bv|version\s?|release\s?|build\s?)$")


def ips(view: str) -> list[Hit]:
    out = []
    for m in _IPV4.finditer(view):
        if _VERSION.search(view[max(0, m.start() - 9):m.start()]):
            continue
        out.append(Hit("IP", m.start(), m.end(), 0.95, "pii.ip.v4"))
    for m in _IPV6.finditer(view):
        text = m.group()
        if text.count(":") < 2 or not re.search(r"[0-9A-Fa-f]", text):
            continue
        try:
            ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            continue
        out.append(Hit("IP", m.start(), m.end(), 0.95, "pii.ip.v6"))
    return out


# -- phone numbers -------------------------------------------------------------------------------
_PHONE_CONTEXT = re.compile(r"(?i)\b(?:phone|tel|telephone|mobile|cell|call|fax|text|sms|whatsapp|reach|dial|"
                            r"contact|ph|mob)\b")
_PHONE_FORMAT = re.compile(r"^\+|\(\d{2,5}\)|\d[ .-]\d")


def phones(view: str, regions: Sequence[str] = ("US",)) -> list[Hit]:
    """Numbers libphonenumber finds possible for one of ``regions`` (or in international form).

    A possible number counts when libphonenumber also finds it valid (a real area code), or
    when it is written as phone numbers are (a leading ``+``, an area code in brackets,
    separators between digit groups) or follows a word such as "phone" or "call": a bare
    run of digits with none of these is an order or account number, not a phone number.
    """
    seen: dict[tuple[int, int], Hit] = {}
    for region in regions:
        for m in phonenumbers.PhoneNumberMatcher(view, region, leniency=phonenumbers.Leniency.POSSIBLE,
                                                 max_tries=100_000):
            key = (m.start, m.end)
            if key in seen:
                continue
            raw = m.raw_string
            glued = (m.start > 0 and (view[m.start - 1].isalnum() or view[m.start - 1] in "-/#")) or (
                m.end < len(view) and view[m.end].isalnum())
            if glued or _DATE.fullmatch(raw) or _VERSION.search(view[max(0, m.start - 9):m.start]):
                continue
            digits = sum(ch.isdigit() for ch in raw)
            valid = phonenumbers.is_valid_number(m.number)
            formatted = bool(_PHONE_FORMAT.search(raw))
            context = _context(view, m.start, _PHONE_CONTEXT, 40)
            if not (valid or formatted or context) or (digits < 8 and not raw.startswith("+") and not context):
                continue
            score = 0.95 if valid and (formatted or context) else 0.85 if (valid or context) else 0.7
            seen[key] = Hit("PHONE", m.start, m.end, score, "pii.phone.libphonenumber")
    return list(seen.values())


# -- dates of birth ------------------------------------------------------------------------------
_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE = re.compile(
    rf"(?i)(?<![\w/.-])(?:"
    rf"(?P<a>\d{{1,2}})[/.-](?P<b>\d{{1,2}})[/.-](?P<y1>\d{{4}}|\d{{2}})"      # 03/14/1985, 14.03.85
    rf"|(?P<y2>\d{{4}})[/.-](?P<m2>\d{{1,2}})[/.-](?P<d2>\d{{1,2}})"            # 1985-03-14
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"                       # March 14, 1985
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}"             # 14th of March 1985
    rf")(?![\w/-]|\.\d)")
_DOB_CONTEXT = re.compile(r"(?i)(?:\bborn\b|\bbirth|\bd\.?o\.?b\b|\bb\.d\b|\bbday\b|\bnée\b|\bnee\b|"
                          r"\bgeboren\b|\bnacid[oa]\b|\bné\b|\bnée\b)")


def _date_ok(m: re.Match[str]) -> bool:
    if m.group("a"):
        a, b = int(m.group("a")), int(m.group("b"))
        return (1 <= a <= 12 and 1 <= b <= 31) or (1 <= b <= 12 and 1 <= a <= 31)
    if m.group("y2"):
        return 1 <= int(m.group("m2")) <= 12 and 1 <= int(m.group("d2")) <= 31
    return True


def dates_of_birth(view: str) -> list[Hit]:
    """Dates with a birth word ("born", "DOB", "date of birth", ...) in the 40 characters before them (and no
    other date in between), or right after them ("(DOB)")."""
    out = []
    found = [m for m in _DATE.finditer(view) if _date_ok(m)]
    for i, m in enumerate(found):
        since = found[i - 1].end() if i else 0
        before = _DOB_CONTEXT.search(view, max(since, m.start() - 40), m.start())
        until = found[i + 1].start() if i + 1 < len(found) else len(view)
        after = _DOB_CONTEXT.search(view, m.end(), min(until, m.end() + 16))
        if before or after:
            out.append(Hit("DATE_OF_BIRTH", m.start(), m.end(), 0.9, "pii.date_of_birth.context"))
    return out


# -- medical record numbers ----------------------------------------------------------------------
_MRN = re.compile(
    r"(?i)\b(?:mrn|med(?:ical)?\.? rec(?:ord)?\.?(?: (?:number|no\.?|num|#))?|patient (?:id|number|no\.?|#)|"
    r"chart (?:number|no\.?|#)|hospital (?:number|no\.?)|health record(?: number)?|record (?:number|no\.?|#))"
    r"[\s:#.]{0,4}(?:is |of |number )?(?P<id>(?=[A-Z0-9-]{0,4}\d)[A-Z]{0,4}[- ]?\d[\d-]{3,13}\d)(?![\w-])")


def mrns(view: str) -> list[Hit]:
    # the number right after its keyword: surer than a phone number of the same digits
    return [Hit("MRN", m.start("id"), m.end("id"), 0.96, "pii.mrn.context") for m in _MRN.finditer(view)]


# -- street addresses (US and UK forms) ----------------------------------------------------------
_SUFFIXES = (
    "alley|aly|annex|arcade|avenue|ave|av|bayou|beach|bend|bluffs?|bottom|boulevard|blvd|branch|bridge|brooks?|"
    "burgs?|bypass|camp|canyon|cape|causeway|centers?|centre|circles?|cir|cliffs?|close|club|commons?|corners?|"
    "course|courts?|ct|coves?|creek|crescent|cres|crest|crossing|crossroads?|curve|dale|dam|divide|drives?|dr|"
    "estates?|expressway|extensions?|falls?|ferry|fields?|flats?|fords?|forest|forges?|forks?|fort|freeway|"
    "gardens?|gateway|glens?|greens?|groves?|harbors?|haven|heights|highway|hwy|hills?|hollow|inlet|islands?|isle|"
    "junctions?|keys?|knolls?|lakes?|land|landing|lanes?|ln|lights?|loaf|locks?|lodge|loop|mall|manors?|"
    "meadows?|mews|mills?|mission|motorway|mount|mountains?|neck|orchard|oval|overpass|parks?|parkways?|pkwy|"
    "pass|passage|path|pike|pines?|place|pl|plains?|plaza|points?|ports?|prairie|radial|ramp|ranch|rapids?|rest|"
    "ridges?|river|roads?|rd|route|row|rue|run|shoals?|shores?|skyway|springs?|spurs?|squares?|sq|station|"
    "stravenue|stream|streets?|st|summit|terrace|ter|throughway|trace|track|trafficway|trail|trl|trailer|"
    "tunnel|turnpike|underpass|unions?|valleys?|via|viaduct|views?|villages?|ville|vista|walks?|wall|ways?|"
    "wells?|wharf|wynd")
"""Street suffixes: the USPS list (Publication 28, appendix C1) with the common British ones."""
_NAME = r"(?:[A-Z][\w'’-]{0,30}|[A-Z]\.)"
_STREET = (rf"\b\d{{1,6}}[A-Za-z]?,?\s(?:{_NAME}\s){{1,4}}?(?i:{_SUFFIXES})\b\.?"
           r"(?:,?\s(?i:apt|apartment|suite|ste|unit|flat|floor|fl|room|rm|#)\.?\s?#?[\w-]{1,8})?")
_ZIP = r"(?:\b[A-Z]{2}\s\d{5}(?:-\d{4})?|\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})\b"
_PLACE = rf"{_NAME}(?:\s{_NAME}){{0,3}}"
_ADDRESS = re.compile(
    rf"(?:(?i:flat|apartment|apt|unit|suite)\.?\s\d{{1,5}}[A-Za-z]?,?\s)?{_STREET}"
    rf"(?:(?:,\s?|\s*\n\s*|\s)(?:{_PLACE},?\s?(?:\n\s*)?)?{_ZIP}"
    rf"|(?:,\s?|\s*\n\s*){_PLACE}(?=[,.;:)]|\s*$|\s*\n))?")
_MILITARY = re.compile(r"\b(?:(?:PSC|Unit)\s\d{1,5},?\s(?:Box\s\d{1,5},?\s?)|(?:USNS|USNV|USS|USCGC)\s[A-Z][a-z]{1,20},?\s?)"
                       r"\n?\s*(?:APO|FPO|DPO)\s[A-Z]{2}\s\d{5}\b")


def addresses(view: str) -> list[Hit]:
    """Street addresses: a house number, up to five words and a street suffix, then optionally a unit,
    a town and a ZIP code or UK postcode; and US military mail addresses (APO/FPO/DPO)."""
    out = [Hit("ADDRESS", m.start(), m.end(), 0.85 if len(m.group()) > 20 else 0.7, "pii.address.pattern")
           for m in _ADDRESS.finditer(view)]
    out += [Hit("ADDRESS", m.start(), m.end(), 0.9, "pii.address.military") for m in _MILITARY.finditer(view)]
    return out


PATTERN_RECOGNIZERS: dict[str, Callable[[str], list[Hit]]] = {
    "EMAIL": emails, "CREDIT_CARD": cards, "IBAN": ibans, "SSN": ssns, "IP": ips,
    "DATE_OF_BIRTH": dates_of_birth, "MRN": mrns, "ADDRESS": addresses,
}
"""The recognizers with no settings, by the entity type they find (``PHONE`` takes regions: :func:`phones`)."""


def resolve_overlaps(hits: Iterable[Hit]) -> list[Hit]:
    """Non-overlapping hits, the best first: same type overlapping merges into one span; across types the
    higher score (then the longer span) wins. Sorted by start."""
    merged: list[Hit] = []
    for h in sorted(hits, key=lambda h: (h.type, h.start, -h.end)):
        last = merged[-1] if merged else None
        if last is not None and last.type == h.type and h.start < last.end:
            merged[-1] = Hit(h.type, last.start, max(last.end, h.end), max(last.score, h.score),
                             last.rule if last.score >= h.score else h.rule)
        else:
            merged.append(h)
    kept: list[Hit] = []
    for h in sorted(merged, key=lambda h: (-h.score, -(h.end - h.start), h.start)):
        if all(h.end <= k.start or h.start >= k.end for k in kept):
            kept.append(h)
    return sorted(kept, key=lambda h: h.start)
