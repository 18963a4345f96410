"""What a long command reports while it runs: the wall time of each stage, and a progress bar.

Library functions mark their stages (read, embed, index, search, choose, store); the CLI
decides what is shown. ``--verbose`` logs each stage's time to stderr through the ``harmonize``
logger (``[harmonize] search 0.01 s``); a bar of the stages shows only when stderr is a terminal
and ``--quiet`` is not given. Used as a library, harmonize shows neither unless asked.

>>> clock = Stages("map", ["read", "search"])
>>> clock.done("read")
>>> clock.done("search")
>>> sorted(clock.seconds)
['read', 'search']
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Sequence
from typing import TextIO

from tqdm import tqdm as std_tqdm
from tqdm.auto import tqdm

log = logging.getLogger("harmonize")

progress_bar = False  # set by the CLI: bars on a terminal unless --quiet


def set_progress(enabled: bool) -> None:
    """Whether stage bars may show (they still show only when stderr is a terminal)."""
    global progress_bar
    progress_bar = enabled


def progress_enabled() -> bool:
    return progress_bar


class Stages:
    """Times one command's stages in order: ``done(name)`` ends the stage that has run since
    the previous ``done`` (or since the clock was made), logs its time and moves the bar on."""

    def __init__(self, desc: str, names: Sequence[str]):
        self.desc = desc
        self.names = list(names)
        self.seconds: dict[str, float] = {}
        # disable=None: tqdm shows the bar only when stderr is a terminal.
        self._bar = tqdm(
            total=len(self.names),
            desc=desc,
            unit="stage",
            leave=False,
            disable=None if progress_bar else True,
            postfix=self.names[0] if self.names else None,
        )
        self._last = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._last
        self._last = now
        log.info("%s %.2f s", name, self.seconds[name])
        self._bar.update(1)
        if len(self.seconds) < len(self.names):
            self._bar.set_postfix_str(self.names[len(self.seconds)])
        else:
            self._bar.close()


def close_bars() -> None:
    """Closes every progress bar still open, so an error message starts on a clean line."""
    for bar in list(std_tqdm._instances):
        bar.close()


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Logs the wall time of one stage that is not part of a :class:`Stages` sequence."""
    started = time.perf_counter()
    yield
    log.info("%s %.2f s", name, time.perf_counter() - started)


@contextlib.contextmanager
def log_stages(stream: TextIO) -> Iterator[None]:
    """While open, stage times go to ``stream`` as ``[harmonize] NAME SECONDS s``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[harmonize] %(message)s"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
