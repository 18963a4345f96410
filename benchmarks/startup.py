"""How long the command line takes to start, against a paired baseline, in one run.

Each command is timed as a fresh process, interleaved with the baseline
``python -c "import click, duckdb"`` (what any click + DuckDB tool pays), so that a busy
machine slows both alike; the ratio command / baseline is the figure to compare across
machines, the absolute seconds are printed too. ``harmonize sites`` runs in a temporary
workspace with two small sites.

    python benchmarks/startup.py            # 7 rounds
    python benchmarks/startup.py --rounds 15

Never asserted in tests: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = [sys.executable, "-c", "import click, duckdb"]
COMMANDS = {"--help": ["--help"], "--version": ["--version"], "sites": ["sites"]}


def harmonize_command() -> list[str]:
    """The installed ``harmonize`` script next to this interpreter, else the same entry point
    through ``python -c``."""
    script = Path(sys.executable).with_name("harmonize")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("harmonize")
    if found:
        return [found]
    return [sys.executable, "-c", "from harmonize.cli import main; main()"]


def make_workspace(root: Path) -> Path:
    """A workspace with two small sites (no index: ``sites`` needs none)."""
    from harmonize.core.workspace import Workspace
    from harmonize.sites.registry import add_site

    ws = root / "ws"
    for name, rows in (("siteA", ("dry cough", "fever")), ("siteB", ("cough", "high fever"))):
        vocab = root / f"{name}.csv"
        lines = [f"{name[-1]}{i},{text}" for i, text in enumerate(rows, 1)]
        vocab.write_text("code,description\n" + "\n".join(lines) + "\n", encoding="utf-8")
        add_site(Workspace(ws), name, vocab)
    return ws


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds one process takes from start to exit; it must succeed."""
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def measure(rounds: int, workspace: Path) -> dict[str, dict[str, list[float]]]:
    """Per command, its times and the baseline's, taken in pairs, one warm-up pair first."""
    env = {**os.environ, "HARMONIZE_WORKSPACE": str(workspace)}
    harmonize = harmonize_command()
    times: dict[str, dict[str, list[float]]] = {
        name: {"command": [], "baseline": []} for name in COMMANDS
    }
    for round_ in range(rounds + 1):
        for name, args in COMMANDS.items():
            pair = (wall(BASELINE, env), wall([*harmonize, *args], env))
            if round_:  # the first round warms the disk cache
                times[name]["baseline"].append(pair[0])
                times[name]["command"].append(pair[1])
    return times


def report(times: dict[str, dict[str, list[float]]]) -> str:
    """One line per command: min and median seconds of it and its baseline, and the ratios."""
    head = (
        f"{'command':<21}{'min s':>8}{'median s':>10}{'base min':>10}{'base med':>10}"
        f"{'ratio min':>11}{'ratio med':>11}"
    )
    lines = [head, "-" * len(head)]
    for name, t in times.items():
        ours, base = t["command"], t["baseline"]
        ratios = [a / b for a, b in zip(ours, base, strict=True)]
        lines.append(
            f"{'harmonize ' + name:<21}{min(ours):>8.3f}{statistics.median(ours):>10.3f}"
            f"{min(base):>10.3f}{statistics.median(base):>10.3f}"
            f"{min(ours) / min(base):>11.2f}{statistics.median(ratios):>11.2f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (plus one warm-up)")
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory() as folder:
        times = measure(rounds, make_workspace(Path(folder)))
    print(f"baseline: {' '.join(BASELINE[1:])!s} ({rounds} paired rounds, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})")  # fmt: skip
    print(report(times))


if __name__ == "__main__":
    main()
