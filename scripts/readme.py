"""Regenerate (or check) the README's example outputs by running its commands.

Every fenced block opened with ```` ```console ```` is a transcript: lines starting with ``$ ``
are commands (a trailing ``\\`` continues one), the lines after a command are its output. The
script runs all console blocks in order, in one bash session, in a fresh tour folder
(``/tmp/harmonize-tour``) that holds a link to the repository's ``examples/``, with the
repository's ``.venv/bin`` first on ``PATH``; it then writes each command's real output (stdout and
stderr, as a terminal shows them, without progress bars) under it.

``--check`` writes nothing: it compares the README with a fresh run and exits 1 with a diff where
they differ. Wall times, run ids and dates are masked and full-precision floats rounded to 4
decimals before comparing; a block opened with ```` ```console varies ```` (speed figures) is
run but not compared.

Usage::

    python scripts/readme.py            # rewrite README.md with fresh outputs
    python scripts/readme.py --check    # exit 1 if README.md's outputs are stale
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOUR = Path("/tmp/harmonize-tour")
FENCE = re.compile(r"^```console( varies)?\s*$")
# What legitimately changes from run to run: wall times, run ids, timestamps, versions of
# the machine's packages are not in the outputs.
MASKS = [
    (re.compile(r"\b\d{8}T\d{6}-[0-9a-f]{6}\b"), "<run>"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(\+\d\d:\d\d)?\b"), "<time>"),
    (re.compile(r"\b\d+(\.\d+)?( ?ms|s)\b"), "<t>"),
    # Floats printed at full precision (csv, json) are compared to 4 decimals: their last
    # digits differ between processors (a cosine of 0.5213854908943176 on one machine is
    # 0.5213855504989624 on another, from the encoder's floating point).
    (re.compile(r"\b\d+\.\d{7,}\b"), lambda m: f"{float(m.group()):.4f}"),
]


@dataclass
class Command:
    text: str  # the command as shown, continuation lines included
    output: list[str] = field(default_factory=list)


@dataclass
class Block:
    start: int  # index of the opening fence line
    end: int  # index of the closing fence line
    varies: bool
    commands: list[Command]


def parse(lines: list[str]) -> list[Block]:
    """The console blocks of the README, with their commands and recorded outputs."""
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, commands, j = i, [], i + 1
        while lines[j].rstrip() != "```":
            line = lines[j]
            if line.startswith("$ "):
                text = line[2:]
                while text.endswith("\\"):
                    j += 1
                    text += "\n" + lines[j]
                commands.append(Command(text))
            elif commands:
                commands[-1].output.append(line)
            else:
                raise SystemExit(f"README.md line {j + 1}: output before any '$ ' command")
            j += 1
        blocks.append(Block(start, j, bool(match.group(1)), commands))
        i = j + 1
    return blocks


class Shell:
    """One bash session, so variables and the working folder carry from command to command."""

    def __init__(self, cwd: Path):
        env = dict(os.environ)
        env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.pop("HARMONIZE_WORKSPACE", None)
        env.update({"COLUMNS": "200", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"})
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, command: str) -> list[str]:
        """The command's output lines (stdout and stderr together)."""
        sentinel = f"@@done-{uuid.uuid4().hex}@@"
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{command}\necho; echo {sentinel}\n")
        self.proc.stdin.flush()
        out = []
        for line in self.proc.stdout:
            if line.rstrip("\n") == sentinel:
                break
            # Paths inside the checkout are shown relative to it: the same from every clone.
            out.append(line.rstrip("\n").rstrip().replace(f"{ROOT}/", ""))
        if out and out[-1] == "":
            out.pop()  # the newline echoed before the sentinel
        return out

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait()


def fresh_tour() -> Path:
    if TOUR.exists():
        shutil.rmtree(TOUR)
    TOUR.mkdir(parents=True)
    (TOUR / "examples").symlink_to(ROOT / "examples")
    return TOUR


def run_blocks(blocks: list[Block]) -> list[list[list[str]]]:
    """Fresh outputs: per block, per command, the output lines."""
    shell = Shell(fresh_tour())
    try:
        results = []
        for block in blocks:
            outs = []
            for command in block.commands:
                print(f"$ {command.text.splitlines()[0]}", file=sys.stderr)
                outs.append(shell.run(command.text))
            results.append(outs)
        return results
    finally:
        shell.close()


def render(lines: list[str], blocks: list[Block], fresh: list[list[list[str]]]) -> list[str]:
    """The README with every console block's outputs replaced by the fresh ones."""
    out, pos = [], 0
    for block, outs in zip(blocks, fresh, strict=True):
        out.extend(lines[pos : block.start + 1])
        for command, output in zip(block.commands, outs, strict=True):
            out.append("$ " + command.text)
            out.extend(output)
        out.append(lines[block.end])
        pos = block.end + 1
    out.extend(lines[pos:])
    return out


def masked(lines: list[str]) -> list[str]:
    """The lines with MASKS applied (long floats rounded to 4 decimals).

    >>> masked(["0.5213854908943176,ok 0.25 in 3.2s"])
    ['0.5214,ok 0.25 in <t>']
    """
    result = []
    for line in lines:
        for pattern, token in MASKS:
            line = pattern.sub(token, line)
        result.append(line)
    return result


def check(lines: list[str], blocks: list[Block], fresh: list[list[list[str]]]) -> int:
    """0 if every compared block matches the fresh run (masked), else 1 with a diff."""
    stale = 0
    for block, outs in zip(blocks, fresh, strict=True):
        if block.varies:
            continue
        for command, output in zip(block.commands, outs, strict=True):
            recorded, now = masked(command.output), masked(output)
            if recorded != now:
                stale += 1
                diff = difflib.unified_diff(recorded, now, "README.md", "fresh run", lineterm="")
                print(f"stale output of: $ {command.text}", *diff, sep="\n")
    if stale:
        print(f"{stale} README output(s) are stale: run 'make readme' to regenerate them.")
    return 1 if stale else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    lines = args.readme.read_text(encoding="utf-8").splitlines()
    blocks = parse(lines)
    fresh = run_blocks(blocks)
    if args.check:
        return check(lines, blocks, fresh)
    args.readme.write_text("\n".join(render(lines, blocks, fresh)) + "\n", encoding="utf-8")
    print(f"rewrote {len(blocks)} console blocks of {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
