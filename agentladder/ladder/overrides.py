"""Overrides of a ladder file on the command line: ``key=value`` with dotted keys, a rung named by its name.

``agentladder climb ladder.yaml out_dir=runs/x rungs.sft.train.max_steps=10 gate.target=0.9``.
"""

from __future__ import annotations

from typing import Any

import yaml

from agentladder.errors import ConfigError


def override_items(overrides: list[str] | dict[str, Any] | None) -> list[tuple[str, Any]]:
    """``key=value`` strings (values read as YAML) or a mapping, as ``(dotted key, value)`` pairs."""
    if not overrides:
        return []
    if isinstance(overrides, dict):
        return list(overrides.items())
    items = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: write key=value (rungs.sft.train.max_steps=10)")
        items.append((key.strip(), yaml.safe_load(value)))
    return items


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``value`` at the dotted ``key`` of a ladder mapping; a rung is named by its name (or index)."""
    node: Any = data
    parts = key.split(".")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):  # rungs: by name, or by index
            match = [r for r in node if isinstance(r, dict) and r.get("name") == part]
            if not match and part.isdigit() and int(part) < len(node):
                match = [node[int(part)]]
            if not match:
                raise ConfigError(f"override {key}: no rung named {part!r}")
            if last:
                raise ConfigError(f"override {key}: name a field of the rung")
            node = match[0]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}: {'.'.join(parts[:i])} is not a mapping")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


__all__ = ["override_items", "set_dotted"]
