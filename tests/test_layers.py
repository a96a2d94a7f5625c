"""The package keeps its layers: no module imports a layer above its own.

Every ``import`` and ``from ... import`` of an ``agentladder`` module is read from the
source, those written inside functions too, and checked against the order written in
docs/architecture.md. An import written inside a function to dodge a cycle is the same
mistake as one at the top, hidden, so it fails here as well.
"""

from __future__ import annotations

import ast
from pathlib import Path

import agentladder

PACKAGE = Path(agentladder.__file__).parent

LOWER = ("errors", "data", "models", "tasks", "rewards")
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "data": {"errors"},
    "models": {"errors", "data"},
    "tasks": {"errors", "data", "models"},
    "rewards": {"errors", "data", "models", "tasks"},
    "train": {*LOWER},
    "evals": {*LOWER},
    "ladder": {*LOWER, "train", "evals"},
    "agents": {*LOWER},
    "serve": {*LOWER, "agents"},
    "cli": {*LOWER, "train", "evals", "ladder", "agents", "serve"},
    "__init__": set(),
    "__main__": {"cli"},
}
"""What each layer may import besides itself (docs/architecture.md draws the same order)."""

AGENTS_SEE_MODELS_THROUGH = ("agentladder.models.providers",)
"""``agents`` sees models only through the provider protocol."""


def _layer(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every agentladder import in a file, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "agentladder":
                found += [(node.lineno, f"agentladder.{a.name}") for a in node.names]
            elif node.module.startswith("agentladder."):
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("agentladder.")]
    return found


def _violations(path: Path, src: str) -> list[str]:
    """The imports of ``path`` (a module of layer ``src``) that run up the layers."""
    wrong = []
    for line, module in _imports(path):
        dst = module.split(".")[1]
        if dst != src and dst not in ALLOWED[src]:
            wrong.append(f"{path.name}:{line}: {src} imports {module}")
        if src == "agents" and dst == "models" and not module.startswith(AGENTS_SEE_MODELS_THROUGH):
            wrong.append(f"{path.name}:{line}: agents reach past the provider protocol to {module}")
    return wrong


def test_every_import_runs_down_the_layers():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        src = _layer(path)
        assert src in ALLOWED, f"{path}: a module outside the layers docs/architecture.md lists"
        wrong += [f"{path.relative_to(PACKAGE.parent).parent}/{v}" for v in _violations(path, src)]
    assert not wrong, "imports up the layers:\n" + "\n".join(wrong)


def test_the_checker_fails_an_upward_import(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("from agentladder.data.schema import Message\n\ndef f():\n    from agentladder.evals import evaluate\n")
    assert _violations(path, "data") == ["m.py:4: data imports agentladder.evals"]
    assert _violations(path, "ladder") == []
    path.write_text("from agentladder.models.loading import load_model\nfrom agentladder.models.providers import Provider\n")
    assert _violations(path, "agents") == ["m.py:1: agents reach past the provider protocol to agentladder.models.loading"]


def test_the_checker_sees_imports_inside_functions(tmp_path):
    source = "def f():\n    from agentladder.ladder import climb\n    import agentladder.evals.runner\n"
    path = tmp_path / "m.py"
    path.write_text(source)
    assert _imports(path) == [(2, "agentladder.ladder"), (3, "agentladder.evals.runner")]
