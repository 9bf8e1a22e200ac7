"""`make mutate`'s closing report: per module, how its selected mutants fared, and which lived.

mutmut keeps each mutated file's results in `mutants/<path>.meta`; `mutmut results` lists
every mutant it did not run as well, so this counts only the ones the run selected (the
globs given as arguments, as to `mutmut run`). Exits 0: survivors are judged in
docs/mutation.md, not by a threshold.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ORDER = ("killed", "survived", "timeout", "no tests", "suspicious", "segfault", "not checked")


def main(globs: list[str]) -> int:
    results: dict[str, dict[str, str]] = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        chosen = {
            name: status_by_exit_code[code]
            for name, code in codes.items()
            if not globs or any(fnmatch.fnmatch(name, g) for g in globs)
        }
        if chosen:
            results[str(meta.relative_to("mutants")).removesuffix(".meta")] = chosen
    if not results:
        print("no mutation results under mutants/: run `make mutate` first")
        return 1
    total: Counter[str] = Counter()
    print(f"{'module':<42} {'total':>5}  " + "  ".join(f"{s:>8}" for s in ORDER[:4]))
    for path, statuses in results.items():
        counts = Counter(statuses.values())
        total.update(counts)
        cells = "  ".join(f"{counts[s]:>8}" for s in ORDER[:4])
        print(f"{path:<42} {len(statuses):>5}  {cells}")
    cells = "  ".join(f"{total[s]:>8}" for s in ORDER[:4])
    print(f"{'all':<42} {total.total():>5}  {cells}")
    others = {s: n for s, n in total.items() if s not in ORDER[:4]}
    if others:
        print("also:", ", ".join(f"{n} {s}" for s, n in sorted(others.items())))
    alive = [
        (name, status)
        for statuses in results.values()
        for name, status in sorted(statuses.items())
        if status != "killed"
    ]
    if alive:
        print("\nnot killed (see one with `.venv/bin/mutmut show NAME`; docs/mutation.md):")
        for name, status in alive:
            print(f"  {status:<10} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
