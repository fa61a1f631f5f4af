"""The gate decisions ``eval.recall_test = "paired"`` changed in improve results files: those where
the share rule's net loss on the levels below was over its allowance (``eval.recall_lost_max`` of
the sample, rounded down) and the paired test let the adapter through.

    PYTHONPATH=. python benchmarks/probes/recall_flips.py benchmarks/results/improve-recallpaired-seed8.json

prints one line per such decision (seed, round, sample, lost, won, p, the gate's verdict); a file
with none prints only its name. Reads the decisions' text, so only files played with "paired".
"""

from __future__ import annotations

import json
import re
import sys

DECISION = re.compile(r"levels below (\d+)/(\d+) \(in use (\d+)\), lost (\d+), won (\d+), p=([\d.]+)")


def flips(data: dict, share: float = 0.1) -> list[tuple[int, int, int, int, int, float, str]]:
    """(seed, round, n, lost, won, p, verdict) of each decision the share rule alone would have
    dropped for the levels below.

    >>> one = {"per_seed": [{"seed": 8, "per_round": [{"round": 3, "new_adapter": {"decision":
    ...     "dev 55.0%; levels below 20/27 (in use 24), lost 5, won 1, p=0.109: not worse: kept"}}]}]}
    >>> flips(one)
    [(8, 3, 27, 5, 1, 0.109, 'kept')]
    """
    out = []
    for s in data["per_seed"]:
        for r in s["per_round"]:
            text = (r.get("new_adapter") or {}).get("decision") or ""
            m = DECISION.search(text)
            if m and int(m[4]) - int(m[5]) > int(share * int(m[2])):
                out.append((int(s["seed"]), int(r["round"]), int(m[2]), int(m[4]), int(m[5]), float(m[6]),
                            text[text.rfind(":") + 1:].strip()))
    return out


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(path)
        for seed, rnd, n, lost, won, p, verdict in flips(json.load(open(path))):
            print(f"  seed {seed} round {rnd}: lost {lost} of {n}, won {won}, p={p:.3f}: {verdict}")
