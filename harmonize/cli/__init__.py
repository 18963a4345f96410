"""The ``harmonize`` command line: each command parses, calls one library function, prints.

The group and its error handling live in ``base``, the options commands share in ``options``;
commands are grouped by what they do. Nothing heavy is imported until a command runs, so
``harmonize --help`` starts fast.

>>> from click.testing import CliRunner
>>> CliRunner().invoke(cli, ["--version"]).output.startswith("harmonize")
True
"""

from harmonize.cli import evaluate, importing, mapping, quality, query, review, serve, sites  # noqa: F401  (registers commands)
from harmonize.cli.base import cli


def main() -> None:
    cli(prog_name="harmonize")


if __name__ == "__main__":
    main()
