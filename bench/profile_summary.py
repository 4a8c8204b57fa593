"""Summarise a py-spy raw (collapsed-stack) profile: where the gateway's threads spend their samples.

    python bench/profile_summary.py bench/results/<run>-profile.raw.txt [--top 30]

Prints per-thread sample shares, then the top functions by inclusive share (on the stack) and by self share
(the leaf frame), over all sampled threads. Idle threads are not sampled by py-spy unless --idle was given,
so shares are of busy samples.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")


def _short(frame: str) -> str:
    """'fn (path/to/file.py:123)' -> 'fn (file.py:123)'."""
    m = re.match(r"^(.*) \((.*)\)$", frame)
    if not m:
        return frame
    fn, loc = m.groups()
    loc = loc.replace("/work/main/", "")
    loc = re.sub(r"^.*/site-packages/", "", loc)
    loc = re.sub(r"^.*/lib/python3\.\d+/", "", loc)
    return f"{fn} ({loc})"


def _no_line(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame)


def summarize(path: Path, top: int = 30) -> str:
    threads: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    selfc: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        stack, n = m.group(1), int(m.group(2))
        frames = stack.split(";")
        thread = frames[0] if frames and frames[0].startswith(("thread", "process")) else "?"
        body = [f for f in frames if not f.startswith(("thread", "process"))]
        total += n
        threads[thread] += n
        seen = set()
        for f in body:
            key = _no_line(_short(f))
            if key not in seen:
                incl[key] += n
                seen.add(key)
        if body:
            selfc[_short(body[-1])] += n
    if not total:
        return f"{path}: no samples\n"
    out = [f"# py-spy profile summary: {path.name}", "", f"{total} samples over all threads.", "",
           "| thread | share |", "|---|---:|"]
    for t, n in threads.most_common(10):
        out.append(f"| {t} | {n / total:.1%} |")
    out += ["", f"Top {top} functions by inclusive share (on the stack):", "", "| function | share |", "|---|---:|"]
    for f, n in incl.most_common(top):
        out.append(f"| `{f}` | {n / total:.1%} |")
    out += ["", f"Top {top} leaf frames (self share):", "", "| frame | share |", "|---|---:|"]
    for f, n in selfc.most_common(top):
        out.append(f"| `{f}` | {n / total:.1%} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("raw")
    p.add_argument("--top", type=int, default=30)
    a = p.parse_args(argv)
    print(summarize(Path(a.raw), a.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
