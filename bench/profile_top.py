"""Where a py-spy raw profile went: per thread, the functions by share of samples, and the write path.

    .venv/bin/python -m bench.profile_top burst.raw [--top 25] [--match notifybot/store]

Reads the folded stacks ``py-spy record -f raw --threads --idle`` writes (what
``bench.common.profiled`` records: one line per distinct stack, the thread
first, then the frames, then the sample count) and prints, per thread, its
share of all samples, then the frames with the largest inclusive share (the
samples in which the frame is anywhere on the stack) and the largest self
share (the samples in which it is the innermost frame). ``--match`` keeps only
frames whose text contains that string in the inclusive list, e.g. the store's
methods, to read off what each step of the write path costs. ``--bucket
NAME=TEXT`` (repeatable) splits each thread's samples by the first bucket whose
text appears anywhere on the stack (in the order given; "other" for the rest).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FOLDED = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_THREAD = re.compile(r"^thread \(\w+\): ?")


@dataclass(frozen=True)
class Stack:
    """One folded stack: its thread, frames (outermost first) and samples."""

    thread: str
    frames: tuple[str, ...]
    samples: int


def read(path: Path) -> list[Stack]:
    """The stacks of a py-spy raw file; a line without a thread is put under "?"."""
    stacks = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        found = _FOLDED.match(line.strip())
        if not found:
            continue
        frames = found["stack"].split(";")
        thread = "?"
        if _THREAD.match(frames[0]):
            thread = _THREAD.sub("", frames[0]) or "?"
            thread = "asyncio loop" if thread == "MainThread" else thread
            frames = frames[1:]
        stacks.append(Stack(thread, tuple(frames), int(found["count"])))
    return stacks


def shares(stacks: list[Stack], match: str | None) -> tuple[Counter[str], Counter[str]]:
    """(inclusive, self) samples per ``thread: frame``; a frame counts once per stack."""
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    for stack in stacks:
        for frame in set(stack.frames):
            if match is None or match in frame:
                inclusive[f"{stack.thread}: {frame}"] += stack.samples
        if stack.frames:
            innermost[f"{stack.thread}: {stack.frames[-1]}"] += stack.samples
    return inclusive, innermost


def buckets(stacks: list[Stack], rules: list[tuple[str, str]]) -> dict[str, Counter[str]]:
    """Per thread, samples per bucket: the first rule whose text is in one of the frames."""
    found: dict[str, Counter[str]] = {}
    for stack in stacks:
        name = next((n for n, text in rules if any(text in f for f in stack.frames)), "other")
        found.setdefault(stack.thread, Counter())[name] += stack.samples
    return found


def main(args: argparse.Namespace) -> None:
    stacks = read(Path(args.profile))
    total = sum(s.samples for s in stacks) or 1
    threads: Counter[str] = Counter()
    for stack in stacks:
        threads[stack.thread] += stack.samples
    inclusive, innermost = shares(stacks, args.match)
    print(f"{total} samples in {args.profile}")
    print("\nper thread (share of all samples; idle samples included):")
    for thread, n in threads.most_common():
        print(f"  {100 * n / total:5.1f} %  {thread}")
    if args.bucket:
        rules = [tuple(b.split("=", 1)) for b in args.bucket]
        for thread, counts in buckets(stacks, [(n, t) for n, t in rules]).items():
            own = sum(counts.values()) or 1
            print(f"\n{thread}, by bucket (share of this thread's samples):")
            for name, n in counts.most_common():
                print(f"  {100 * n / own:5.1f} %  {name}")
    print(f"\ninclusive (anywhere on the stack){f', frames matching {args.match!r}' if args.match else ''}:")
    for frame, n in inclusive.most_common(args.top):
        print(f"  {100 * n / total:5.1f} %  {frame}")
    print("\nself (innermost frame):")
    for frame, n in innermost.most_common(args.top):
        print(f"  {100 * n / total:5.1f} %  {frame}")


def parser() -> argparse.ArgumentParser:
    """This script's options."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("profile", help="a py-spy raw (folded) profile")
    options.add_argument("--top", type=int, default=25)
    options.add_argument("--bucket", action="append", default=[],
                         help="NAME=TEXT: samples whose stack has TEXT go to NAME (repeatable)")
    options.add_argument("--match", help="inclusive list: only frames containing this text")
    return options


if __name__ == "__main__":
    main(parser().parse_args())
