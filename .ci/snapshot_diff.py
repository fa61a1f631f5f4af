"""Print, as text, how each failed snapshot differs from the stored one.

CI shows only the log, and pytest-textual-snapshot's verdict lives in an HTML report (the pictures):
this reads that report and prints a unified diff of the screen text, line by line, for each failed
snapshot, so that a failure on CI says what the screen showed. Usage: python .ci/snapshot_diff.py
[snapshot_report.html]"""

from __future__ import annotations

import difflib
import html
import re
import sys
from pathlib import Path


def screen_lines(svg: str) -> list[str]:
    """The text of a Textual SVG screenshot, one string per terminal row."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for attrs, text in re.findall(r"<text([^>]*)>(.*?)</text>", svg, flags=re.S):
        x, y = re.search(r'\bx="([\d.]+)"', attrs), re.search(r'\by="([\d.]+)"', attrs)
        if x and y:
            rows.setdefault(float(y.group(1)), []).append((float(x.group(1)), html.unescape(text)))
    lines = []
    for _, parts in sorted(rows.items()):
        line = ""
        for x, text in sorted(parts):  # rich draws a cell 12.2 px wide (20 px high, aspect 0.61)
            line = line.ljust(round(x / 12.2)) + text.replace("\xa0", " ")
        lines.append(line.rstrip())
    return lines


def main(path: str = "snapshot_report.html") -> int:
    report = Path(path)
    if not report.exists():
        return 0
    page = report.read_text(encoding="utf-8")
    # the report's template shows each failure, after its name, as: the actual picture, the same
    # again (the overlay), then the stored snapshot (absent when none was stored)
    cards = re.split(r'<span class="fw-bold">\s*(.*?)\s*</span>', page)[1:]
    for name, card in zip(cards[::2], cards[1::2]):
        svgs = re.findall(r"<svg.*?</svg>", card, flags=re.S)
        if not svgs:
            continue
        actual, snapshot = svgs[0], svgs[2] if len(svgs) > 2 else ""
        print(f"--- snapshot {name}: stored (-) against this run (+)")
        sys.stdout.writelines(line + "\n" for line in difflib.unified_diff(
            screen_lines(snapshot), screen_lines(actual), "stored", "this run", n=1, lineterm=""))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
