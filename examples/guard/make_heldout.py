"""Turn the hand-written held-out set (heldout.txt) into the guard's labelled JSONL form (heldout.jsonl).

    python examples/guard/make_heldout.py            # writes examples/guard/heldout.jsonl

``[[TYPE|value]]`` marks become character spans; ``\\n`` and ``\\uXXXX`` escapes become the characters.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MARK = re.compile(r"\[\[([A-Z_]+)\|(.*?)\]\]")


def unescape(text: str) -> str:
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return text.replace("\\n", "\n")


def convert(line: str, number: int) -> dict:
    injection, where, topic, marked = line.split("\t", 3)
    marked = unescape(marked)
    text, entities, pos = "", [], 0
    for m in MARK.finditer(marked):
        text += marked[pos:m.start()]
        entities.append({"type": m.group(1), "start": len(text), "end": len(text) + len(m.group(2))})
        text += m.group(2)
        pos = m.end()
    text += marked[pos:]
    return {"id": f"heldout-{number:03d}", "text": text, "entities": entities,
            "topic": None if topic == "none" else topic, "injection": injection == "1", "where": where,
            "metadata": {"source": "hand-written"}}


def main(source: Path = HERE / "heldout.txt", out: Path = HERE / "heldout.jsonl") -> int:
    rows = [convert(line, i + 1) for i, line in enumerate(
        line for line in source.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#"))]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} rows -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
