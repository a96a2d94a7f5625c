"""The guard policy (``guard.yaml``): which personal data to mask, which topics to refuse, how hard to look
for prompt injection, and where to look.

.. code-block:: yaml

    name: pharmacy
    pii: {entities: [PERSON, EMAIL, PHONE, SSN, CREDIT_CARD, IBAN, IP, DATE_OF_BIRTH, ADDRESS, MRN], action: mask}
    denied_topics:
      - {name: investment-advice, examples: ["which stocks should I buy", "is bitcoin a good bet"], strength: high}
    injection: {strength: medium, action: block}
    apply_to: [input, output, tool_result]

A file with an unknown entity, action or strength gets one error line naming the file,
the line and the field (``guard.yaml:2: pii.entities[3]: Input should be 'PERSON', ...``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import phonenumbers
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentladder.data.io import yaml_line
from agentladder.errors import DataError, MissingFileError, data_error

EntityType = Literal["PERSON", "EMAIL", "PHONE", "SSN", "CREDIT_CARD", "IBAN", "IP", "DATE_OF_BIRTH", "ADDRESS",
                     "MRN"]
ENTITY_TYPES: tuple[str, ...] = EntityType.__args__  # type: ignore[attr-defined]
PiiAction = Literal["mask", "replace", "block"]
"""``mask``: the span becomes ``<TYPE>``; ``replace``: ``<TYPE_n>``, the same ``n`` for the same value within
one conversation; ``block``: the text is refused (it is still masked wherever it is recorded)."""
Strength = Literal["low", "medium", "high"]
"""How hard a detector looks: ``low`` fires only when it is nearly sure (fewest false alarms), ``high`` misses
least, ``medium`` balances the two. Each level is a threshold chosen on a validation split."""
Where = Literal["input", "output", "tool_result"]
WHERE: tuple[str, ...] = Where.__args__  # type: ignore[attr-defined]
NerBackend = Literal["auto", "presidio", "minilm", "both", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PiiPolicy(_Strict):
    """Personal data to find, and what to do with it."""

    entities: list[EntityType] = Field(default_factory=lambda: list(ENTITY_TYPES))
    """Entity types to look for (default: all ten)."""
    action: PiiAction = "mask"
    """What to do with a finding: mask, replace (consistent placeholders per conversation) or block."""
    actions: dict[EntityType, PiiAction] = Field(default_factory=dict)
    """Per-type exceptions to ``action`` (``{SSN: block}``)."""
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    """Findings scored below this are ignored."""
    ner: NerBackend = "auto"
    """What finds names and addresses: ``presidio`` (Presidio with a packaged spaCy model), ``minilm`` (a token
    classifier on the packaged MiniLM, trained on first use), ``both`` (the union of the two), ``none`` (patterns
    only), ``auto`` (Presidio when a spaCy model is installed, else the tagger; see docs/guardrails.md)."""
    phone_regions: list[str] = Field(default_factory=lambda: ["US", "GB"])
    """Regions whose national phone formats are recognised (numbers with a ``+`` country code always are)."""

    def action_for(self, entity: str) -> str:
        return self.actions.get(entity, self.action)  # type: ignore[call-overload]

    @field_validator("phone_regions")
    @classmethod
    def _regions(cls, value: list[str]) -> list[str]:
        known = phonenumbers.SUPPORTED_REGIONS
        for region in value:
            if region.upper() not in known:
                raise ValueError(f"unknown phone region {region!r} (two-letter region codes such as US, GB, DE)")
        return [r.upper() for r in value]


class DeniedTopic(_Strict):
    """A topic the assistant must not engage with, defined by a name and a few examples."""

    name: str = Field(min_length=1)
    examples: list[str] = Field(min_length=1)
    """A few requests that belong to the topic (their embeddings define it)."""
    strength: Strength = "medium"
    data: str | None = None
    """Labelled rows (``{"text", "topic"}`` JSONL; ``topic`` is this name or null) to train a classifier on;
    relative to the policy file."""


class InjectionPolicy(_Strict):
    """Instructions smuggled into inputs or tool results."""

    strength: Strength = "medium"
    action: Literal["block", "flag"] = "block"
    """``block`` refuses the text; ``flag`` lets it through and records the finding."""
    where: list[Where] = Field(default_factory=lambda: ["input", "tool_result"])
    """Where injection is looked for (a model's own output is not an injection)."""


class GuardPolicy(_Strict):
    """A whole policy. Every part is optional; an empty policy checks nothing."""

    name: str = "guard"
    """Named in every audit row and blocked request."""
    pii: PiiPolicy | None = None
    denied_topics: list[DeniedTopic] = Field(default_factory=list)
    injection: InjectionPolicy | None = None
    apply_to: list[Where] = Field(default_factory=lambda: list(WHERE))
    """Where the guard runs: the user's input, the model's output, tool results."""

    @model_validator(mode="after")
    def _unique_topics(self) -> GuardPolicy:
        names = [t.name for t in self.denied_topics]
        for i, name in enumerate(names):
            if name in names[:i]:
                err = ValueError(f"two denied topics are named {name!r}")
                err.loc = ["denied_topics", i, "name"]  # type: ignore[attr-defined]
                raise err
        return self


def parse_policy(data: Any, *, source: str | os.PathLike | None = None, text: str | None = None,
                 base: str | os.PathLike | None = None) -> GuardPolicy:
    """A policy from a mapping; errors name ``source``, the YAML line (given ``text``) and the field.

    Relative ``data`` files of denied topics are resolved against ``base``.
    """
    if not isinstance(data, dict):
        raise DataError(source, None, None, f"expected a mapping (pii, denied_topics, injection, apply_to), "
                                            f"got {type(data).__name__}")
    try:
        policy = GuardPolicy.model_validate(data)
    except ValidationError as err:
        line_of = (lambda loc: yaml_line(text, loc)) if text else None
        raise data_error(err, source, line_of) from None
    if base is not None:
        for topic in policy.denied_topics:
            if topic.data and not Path(topic.data).is_absolute():
                topic.data = str(Path(base) / topic.data)
    return policy


def load_policy(path: str | os.PathLike) -> GuardPolicy:
    """A :class:`GuardPolicy` from a YAML (or JSON) file."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such guard policy")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, None,
                        f"invalid YAML: {getattr(err, 'problem', err)}") from None
    data = {} if data is None else data
    if isinstance(data, dict) and "name" not in data:
        data = {"name": path.stem, **data}
    return parse_policy(data, source=path, text=text, base=path.parent)
