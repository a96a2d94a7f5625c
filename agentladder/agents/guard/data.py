"""Labelled text for the guard: personal data with character spans, denied topics and prompt injections.

Rows have the documented form ``{"id", "text", "entities": [{"type", "start", "end"}], "topic",
"injection", "where", "metadata"}`` (:class:`~agentladder.agents.guard.evaluate.LabelledRow`).

- ``guard-pii``: one to three sentences of one domain (pharmacy, finance, support, HR) with
  names, e-mail addresses, phone numbers, SSNs, card numbers, IBANs, IP addresses, dates of
  birth, street addresses and medical record numbers drawn with Faker (names and numbers of
  eleven locales), beside near misses that are not personal data: order and invoice numbers,
  card-like numbers that fail Luhn's check, dates that are not birth dates, version strings,
  company names, a street named without a house number.
- ``guard-topics``: requests on four topics a policy may deny, requests that come close
  (banking questions next to investment advice, an election-day question next to politics), and
  unrelated requests.
- ``guard-injection``: instructions smuggled into user input or into tool results (an e-mail, a
  web page, a review), and benign text that uses the same words ("please ignore my previous
  message").
- ``guard-eval``: the three mixed (half PII, a quarter each topics and injection).

Splits never share a row, and more: every template family is split by template (five in seven
for train, one each for validation and test), so validation and test rows are phrased in
sentences the training rows never used. Rows are reproducible from the seed.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import os
import random
import re
from collections.abc import Callable
from typing import Any

from agentladder.agents.guard import templates as T
from agentladder.data.io import write_jsonl
from agentladder.errors import ConfigError

SPLITS = ("train", "validation", "test")
KINDS = ("guard-pii", "guard-topics", "guard-injection", "guard-eval")
NAME_LOCALES = ("en_US", "en_US", "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "en_IN",
                "pl_PL")
_SLOT = re.compile(r"\{(\w+)\}")


def split_family(family: list[str], split: str, cover: tuple[str, ...] = ()) -> list[str]:
    """The templates of ``family`` that belong to ``split``.

    Templates are ordered by a hash. First, for each slot in ``cover``, validation and then test take
    the first template holding that slot (when they have none yet), so every entity type appears in
    every split; then every seventh template from the fifth goes to validation, from the sixth to
    test, and the rest to train.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    return _split_table(tuple(family), cover)[split]


@functools.cache
def _split_table(family: tuple[str, ...], cover: tuple[str, ...]) -> dict[str, list[str]]:
    ranked = sorted(family, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    assigned: dict[str, str] = {}
    for part in ("validation", "test"):
        for slot in cover:
            key = "{" + slot + "}"
            if any(p == part and key in t for t, p in assigned.items()):
                continue
            first = next((t for t in ranked if t not in assigned and key in t), None)
            if first is not None:
                assigned[first] = part
    for i, t in enumerate(ranked):
        assigned.setdefault(t, {5: "validation", 6: "test"}.get(i % 7, "train"))
    return {part: [t for t in ranked if assigned[t] == part] for part in SPLITS}


class _Draw:
    """Values for the slots, from Faker (seeded) and a random generator."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.fakers: dict[str, Any] = {}
        self._seed = rng.randrange(2**31)

    def faker(self, locale: str = "en_US"):
        from faker import Faker

        if locale not in self.fakers:
            fake = Faker(locale)
            fake.seed_instance(self._seed + len(self.fakers))
            self.fakers[locale] = fake
        return self.fakers[locale]

    # -- personal data: (text, start, end) of the labelled part ------------------------------------
    def PERSON(self) -> tuple[str, int, int]:
        fake = self.faker(self.rng.choice(NAME_LOCALES))
        style = self.rng.random()
        if style < 0.6:
            name = f"{fake.first_name()} {fake.last_name()}"
        elif style < 0.75:
            name = f"{fake.first_name()} {fake.first_name()[0]}. {fake.last_name()}"
        elif style < 0.9:
            title = self.rng.choice(["Mr. ", "Ms. ", "Mrs. ", "Dr. "])
            name = fake.last_name()
            return title + name, len(title), len(title) + len(name)
        else:
            name = fake.first_name()
        return name, 0, len(name)

    def EMAIL(self) -> str:
        fake = self.faker(self.rng.choice(("en_US", "en_GB", "de_DE", "fr_FR")))
        kind = self.rng.random()
        if kind < 0.4:
            return fake.email()
        if kind < 0.7:
            first, last = fake.first_name().lower(), fake.last_name().lower()
            first = re.sub(r"[^a-z]", "", first) or "user"
            last = re.sub(r"[^a-z]", "", last) or "name"
            return f"{first}{self.rng.choice(['.', '_', ''])}{last}{self.rng.choice(['', str(self.rng.randint(1, 99))])}@{fake.free_email_domain()}"
        return fake.company_email()

    def PHONE(self) -> str:
        import phonenumbers

        r = self.rng.random()
        if r < 0.6:
            return self.faker("en_US").phone_number()
        if r < 0.8:
            return self.faker("en_GB").phone_number()
        locale, region = self.rng.choice((("de_DE", "DE"), ("fr_FR", "FR"), ("es_ES", "ES"), ("it_IT", "IT")))
        raw = self.faker(locale).phone_number()
        try:
            number = phonenumbers.parse(raw, region)
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        except phonenumbers.NumberParseException:
            return self.faker("en_US").phone_number()

    def SSN(self) -> str:
        ssn = self.faker("en_US").ssn()
        return ssn if self.rng.random() < 0.8 else ssn.replace("-", "")

    def CREDIT_CARD(self) -> str:
        card_type = self.rng.choice(("visa16", "mastercard", "amex", "discover", "jcb16", "visa13"))
        digits = self.faker("en_US").credit_card_number(card_type=card_type)
        style = self.rng.random()
        if style < 0.5:
            return digits
        groups = [digits[:4], digits[4:10], digits[10:]] if len(digits) == 15 else \
            [digits[i:i + 4] for i in range(0, len(digits), 4)]
        return (" " if style < 0.9 else "-").join(groups)

    def IBAN(self) -> str:
        iban = self.faker(self.rng.choice(("en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "it_IT"))).iban()
        if self.rng.random() < 0.5:
            return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        return iban

    def IP(self) -> str:
        r = self.rng.random()
        fake = self.faker()
        if r < 0.6:
            return fake.ipv4_public()
        if r < 0.8:
            return fake.ipv4_private()
        return str(ipaddress.IPv6Address(fake.ipv6()))

    def DATE_OF_BIRTH(self) -> str:
        return self._date(self.faker().date_of_birth(minimum_age=1, maximum_age=95))

    def ADDRESS(self) -> str:
        if self.rng.random() < 0.7:
            address = self.faker("en_US").address()
        else:
            address = self.faker("en_GB").address()
        return address if self.rng.random() < 0.2 else address.replace("\n", ", ")

    def MRN(self) -> str:
        n = self.rng.randint
        return self.rng.choice((f"{n(0, 99_999_999):08d}", f"{n(1_000_000, 9_999_999)}", f"MR{n(0, 999_999):06d}",
                                f"{n(100, 999)}-{n(1000, 9999)}", f"{n(0, 9_999_999_999):010d}"))

    # -- everything else ----------------------------------------------------------------------------
    def _date(self, d) -> str:
        fmt = self.rng.choice(("%m/%d/%Y", "%Y-%m-%d", "%B %d, %Y", "%d %B %Y", "%d.%m.%Y", "%b %d %Y"))
        return d.strftime(fmt)

    def filler(self, slot: str) -> str:
        fake, rng = self.faker(), self.rng
        n = rng.randint
        table: dict[str, Callable[[], str]] = {
            "drug": lambda: rng.choice(("lisinopril", "Metformin", "atorvastatin", "amoxicillin", "Ibuprofen",
                                        "sertraline", "omeprazole", "Levothyroxine", "warfarin", "insulin glargine",
                                        "prednisone", "albuterol", "Gabapentin", "losartan")),
            "strength": lambda: f"{rng.choice((5, 10, 20, 25, 40, 50, 100, 250, 500))} mg",
            "date": lambda: self._date(fake.date_between(start_date="-2y", end_date="+1y")),
            "time": lambda: rng.choice(("9am", "5:30 pm", "14:00", "noon", "8 a.m.", "6pm")),
            "order": lambda: rng.choice((f"#{n(10000, 99999)}", f"ORD-{n(10000, 99999)}-{n(10, 99)}",
                                         f"{n(1_000_000_000, 9_999_999_999)}", f"A{n(100000, 999999)}")),
            "amount": lambda: rng.choice((f"${n(5, 9999)}.{n(0, 99):02d}", f"€{n(5, 5000)}", f"£{n(10, 900)}",
                                          f"{n(100, 50000)} USD")),
            "company": fake.company,
            "street_only": lambda: f"{fake.street_name()}",
            "city": fake.city,
            "lot": lambda: f"{rng.choice('ABCDEFGH')}{n(1000, 99999)}",
            "store": lambda: f"#{n(100, 9999)}",
            "last4": lambda: f"{n(0, 9999):04d}",
            "invoice": lambda: f"INV-{n(2019, 2026)}-{n(0, 99999):05d}",
            "ticket": lambda: rng.choice((f"#{n(1000, 999999)}", f"TCK-{n(1000, 99999)}")),
            "version": lambda: rng.choice((f"{n(1, 12)}.{n(0, 30)}.{n(0, 9)}", f"{n(1, 12)}.{n(0, 9)}.{n(0, 99)}.{n(0, 999)}",
                                           f"v{n(1, 5)}.{n(0, 20)}")),
            "count": lambda: str(n(2, 250)),
            "tracking": lambda: rng.choice((f"1Z{n(100, 999)}AA{n(10**9, 10**10 - 1)}", f"{n(10**11, 10**12 - 1)}")),
            "weekday": lambda: rng.choice(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")),
            "employee": lambda: f"E-{n(10000, 99999)}",
            "asset": lambda: f"LT-{n(1000, 9999)}",
            "room": lambda: f"{n(1, 9)}{rng.choice('ABCD')}",
            "ticker": lambda: rng.choice(("AAPL", "Tesla", "NVDA", "Amazon", "MSFT", "Shopify", "GameStop")),
            "crypto": lambda: rng.choice(("bitcoin", "Ethereum", "Dogecoin", "Solana")),
            "party": lambda: rng.choice(("Democratic", "Republican", "Labour", "Conservative", "Green")),
            "sport": lambda: rng.choice(("football", "basketball", "tennis", "cricket", "hockey")),
        }
        if slot not in table:
            raise KeyError(f"template slot {{{slot}}} has no filler")
        return table[slot]()


def render(template: str, draw: _Draw, extra: dict[str, tuple[str, list[dict[str, Any]]]] | None = None
           ) -> tuple[str, list[dict[str, Any]]]:
    """The template with its slots filled, and the labelled spans ``[{"type", "start", "end"}]``.

    ``extra`` fills named slots with already rendered text and its own spans.
    """
    out: list[str] = []
    entities: list[dict[str, Any]] = []
    pos = 0
    length = 0
    for m in _SLOT.finditer(template):
        literal = template[pos:m.start()]
        out.append(literal)
        length += len(literal)
        slot = m.group(1)
        if extra and slot in extra:
            value, inner = extra[slot]
            entities += _shift(inner, length)
        elif slot.isupper() and hasattr(draw, slot):
            got = getattr(draw, slot)()
            value, s, e = got if isinstance(got, tuple) else (got, 0, len(got))
            entities.append({"type": slot, "start": length + s, "end": length + e})
        else:
            value = draw.filler(slot)
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), entities


def _shift(entities: list[dict[str, Any]], by: int) -> list[dict[str, Any]]:
    return [{**e, "start": e["start"] + by, "end": e["end"] + by} for e in entities]


PII_TYPES = ("PERSON", "EMAIL", "PHONE", "SSN", "CREDIT_CARD", "IBAN", "IP", "DATE_OF_BIRTH", "ADDRESS", "MRN")
_PII_FAMILY = [(domain, t) for domain, ts in sorted(T.PII_TEMPLATES.items()) for t in ts]


def _pii_row(draw: _Draw, split: str) -> dict[str, Any]:
    rng = draw.rng
    chosen = set(split_family([t for _, t in _PII_FAMILY], split, PII_TYPES))
    by_domain: dict[str, list[str]] = {}
    for domain, t in _PII_FAMILY:
        if t in chosen:
            by_domain.setdefault(domain, []).append(t)
    domain = rng.choice(sorted(by_domain))
    family = by_domain[domain]
    text, entities = "", []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        sentence, found = render(rng.choice(family), draw)
        if text:
            text += " " if rng.random() < 0.8 else "\n"
        entities += _shift(found, len(text))
        text += sentence
    return {"text": text, "entities": entities, "topic": None, "injection": False, "where": "input",
            "metadata": {"kind": "pii", "domain": domain}}


_OPENERS = ("", "", "", "Hi, ", "Quick question: ", "Hello! ", "Hey, ", "Sorry to bother you, ")


def _topic_row(draw: _Draw, split: str) -> dict[str, Any]:
    rng = draw.rng
    r = rng.random()
    if r < 0.45:
        topic = rng.choice(sorted(T.TOPIC_TEMPLATES))
        template, label, kind = rng.choice(split_family(T.TOPIC_TEMPLATES[topic], split)), topic, "topic"
    elif r < 0.7:
        template, label, kind = rng.choice(split_family(T.TOPIC_NEAR_MISSES, split)), None, "near-miss"
    else:
        template, label, kind = rng.choice(split_family(T.GENERAL_NEGATIVES, split)), None, "general"
    text, entities = render(template, draw)
    opener = rng.choice(_OPENERS)
    if opener:
        text = opener + text[0].lower() + text[1:] if not text[:2].isupper() else opener + text
        entities = _shift(entities, len(opener))
    return {"text": text, "entities": entities, "topic": label, "injection": False, "where": "input",
            "metadata": {"kind": kind}}


def _injection_row(draw: _Draw, split: str) -> dict[str, Any]:
    rng = draw.rng
    r = rng.random()
    if r < 0.55:
        goal, goal_entities = render(rng.choice(split_family(T.INJECTION_GOALS, split)), draw)
        cap = (goal[0].upper() + goal[1:], goal_entities)
        text, entities = render(rng.choice(split_family(T.INJECTION_TEMPLATES, split)), draw,
                                {"goal": (goal, goal_entities), "goal_cap": cap})
        if r < 0.3:
            return {"text": text, "entities": entities, "topic": None, "injection": True, "where": "input",
                    "metadata": {"kind": "injection-input"}}
        wrapper = rng.choice(split_family(T.DOCUMENT_WRAPPERS, split))
        doc, doc_entities = render(wrapper, draw, {"inject": (text, entities)})
        at = doc.index(text)
        return {"text": doc, "entities": sorted(doc_entities, key=lambda e: e["start"]), "topic": None, "injection": True,
                "where": "tool_result", "metadata": {"kind": "injection-tool-result", "inject": [at, at + len(text)]}}
    if r < 0.8:
        family = T.BENIGN_INPUTS_NEAR if rng.random() < 0.5 else T.GENERAL_NEGATIVES
        text, entities = render(rng.choice(split_family(family, split)), draw)
        return {"text": text, "entities": entities, "topic": None, "injection": False, "where": "input",
                "metadata": {"kind": "benign-input"}}
    text, entities = render(rng.choice(split_family(T.BENIGN_TOOL_RESULTS, split)), draw)
    return {"text": text, "entities": entities, "topic": None, "injection": False, "where": "tool_result",
            "metadata": {"kind": "benign-tool-result"}}


_MAKERS = {"guard-pii": _pii_row, "guard-topics": _topic_row, "guard-injection": _injection_row}


def make_guard_rows(kind: str, split: str, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` labelled rows of ``kind`` (one of :data:`KINDS`) from ``split``, reproducible from ``seed``."""
    if kind not in KINDS:
        raise ConfigError(f"unknown guard data {kind!r}: choose one of {', '.join(KINDS)}")
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
    if n < 0:
        raise ConfigError("n must be at least 0")
    rng = random.Random(f"{kind}:{split}:{seed}")
    draw = _Draw(rng)
    rows = []
    for i in range(n):
        if kind == "guard-eval":
            r = rng.random()
            maker = _pii_row if r < 0.5 else _topic_row if r < 0.75 else _injection_row
        else:
            maker = _MAKERS[kind]
        row = maker(draw, split)
        rows.append({"id": f"{kind}-{split}-{i + 1:06d}", **row})
    return rows


def write_guard_rows(kind: str, split: str, n: int, out: str | os.PathLike, *, seed: int = 0) -> int:
    """:func:`make_guard_rows` written atomically as JSONL; returns the number of rows."""
    return write_jsonl(out, make_guard_rows(kind, split, n, seed=seed))
