"""Stage timings (--verbose) and progress bars (on a terminal only, never with --quiet)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pty
import re
import select
import struct
import termios

import pytest

from harmonize.cli import cli
from tests.helpers import normalise, run, snapshot

STAGES = {
    "add-site": ["read", "store"],
    "build-index": ["read", "embed", "index", "store"],
    "map": ["read", "search", "choose", "store"],
}


@pytest.fixture
def mapped(runner, indexed):
    result = run(
        runner, indexed, "map", "--source", "siteB", "--target", "siteA", "--model", "fake"
    )
    assert result.exit_code == 0
    return indexed


def _commands(vocab_files) -> dict[str, list[str]]:
    return {
        "add-site": ["add-site", "siteA", "--vocab", str(vocab_files["a"]), "--replace"],
        "build-index": ["build-index", "--site", "siteA", "--model", "fake", "--force"],
        "map": ["map", "--source", "siteB", "--target", "siteA", "--model", "fake"],
    }


@pytest.mark.parametrize("command", sorted(STAGES))
def test_verbose_logs_each_stage_time_and_leaves_stdout_alone(runner, mapped, vocab_files, command):
    args = _commands(vocab_files)[command]
    plain = run(runner, mapped, *args)
    verbose = run(runner, mapped, "--verbose", *args)
    assert (plain.exit_code, verbose.exit_code) == (0, 0)
    assert normalise(verbose.stdout) == normalise(plain.stdout)
    assert plain.stderr == ""  # no terminal: no progress bar either
    lines = verbose.stderr.splitlines()
    assert [re.fullmatch(r"\[harmonize\] (\w+) \d+\.\d\d s", line).group(1) for line in lines] == (
        STAGES[command]
    )
    assert run(runner, mapped, "-v", *args).stderr.count("[harmonize] ") == len(STAGES[command])


def test_quiet_and_verbose_together_are_refused(runner, mapped, vocab_files):
    before = snapshot(mapped)
    result = run(runner, mapped, "--quiet", "--verbose", *_commands(vocab_files)["map"])
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == "Error: --quiet and --verbose contradict each other: give one of them\n"
    assert snapshot(mapped) == before


def _on_a_terminal(ws, *args: str) -> tuple[int, str, bytes]:
    """Runs the CLI in-process with stderr on a pseudo-terminal (100 columns), stdout captured:
    (exit code, stdout, what reached the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    stdout = io.StringIO()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(terminal):
            try:
                cli.main(["--workspace", str(ws.root), *args], prog_name="harmonize")
            except SystemExit as exc:
                code = exc.code
        terminal.flush()
    shown = b""
    while select.select([master], [], [], 0)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end is closed and everything was read
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return code, stdout.getvalue(), shown


def test_progress_shows_on_a_terminal_and_never_with_quiet(mapped, vocab_files):
    args = _commands(vocab_files)["map"]
    code, out, shown = _on_a_terminal(mapped, *args)
    assert code == 0 and b"map: " in shown and b"stage" in shown
    quiet_code, quiet_out, quiet_shown = _on_a_terminal(mapped, "--quiet", *args)
    assert (quiet_code, quiet_shown) == (0, b"")
    assert normalise(quiet_out) == normalise(out)


def test_an_error_on_a_terminal_starts_on_a_clean_line(mapped):
    """The bar is cleared before the error is printed, not left in front of it."""
    args = ["map", "--source", "siteB", "--target", "siteA", "--model", "lexical"]
    code, out, shown = _on_a_terminal(mapped, *args)
    assert (code, out) == (1, "")
    assert b"map: " in shown
    assert shown.endswith(
        b"\rError: no index for site 'siteB' with model lexical. "
        b"Run 'harmonize build-index --site siteB --model lexical' first.\r\n"
    )
