"""The ladder files shipped in the package (``agentladder/resources/ladders``)."""

from __future__ import annotations

from pathlib import Path

from agentladder.errors import ConfigError

LADDERS = Path(__file__).resolve().parent.parent / "resources" / "ladders"


def shipped_ladders() -> dict[str, Path]:
    """Name -> path of every shipped ladder file."""
    return {p.stem: p for p in sorted(LADDERS.glob("*.yaml"))}


def demo_ladder(name: str = "medication") -> Path:
    """The path of a shipped ladder: ``medication`` (the demo), ``medication-full`` (the longer recipe of
    ``agentladder demo --full``) or ``smoke`` (the demo's climb on the tiny model)."""
    ladders = shipped_ladders()
    if name not in ladders:
        raise ConfigError(f"no shipped ladder {name!r}: choose one of {', '.join(ladders)}")
    return ladders[name]


__all__ = ["demo_ladder", "shipped_ladders"]
