"""The command line: exact output and exit codes, and failed commands leave no trace."""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest

from harmonize.cli import cli
from harmonize.core.config import RANDOM_STATE
from harmonize.core.errors import HarmonizeError
from tests.helpers import normalise, run, snapshot

HEAVY = (
    "torch",
    "transformers",
    "sentence_transformers",
    "sklearn",
    "lightgbm",
    "faiss",
    "onnxruntime",
    "scipy",
)
# Needed by most commands, but not to list them: --help stays well under a second.
DATA = ("pandas", "pyarrow", "tabulate", "tqdm", "numpy", "duckdb")


def test_add_site_and_sites(runner, workspace, vocab_files):
    result = run(runner, workspace, "add-site", "siteA", "--vocab", str(vocab_files["a"]))
    assert (result.exit_code, result.output) == (0, "added site 'siteA': 5 concepts\n")
    result = run(runner, workspace, "sites")
    assert result.output == (
        "site      concepts    events    subjects  indexes\n"
        "------  ----------  --------  ----------  ---------\n"
        "siteA            5         0           0  none\n"
    )


def test_build_index_then_up_to_date(runner, workspace, vocab_files, fake_encoder):
    run(runner, workspace, "add-site", "siteA", "--vocab", str(vocab_files["a"]))
    first = run(runner, workspace, "build-index", "--site", "siteA", "--model", "fake")
    assert normalise(first.output) == (
        "built flat index for site 'siteA' with model fake: 5 concepts, dim 32, "
        "5 newly embedded, <t>s on cpu\n"
    )
    again = run(runner, workspace, "build-index", "--site", "siteA", "--model", "fake")
    assert again.output == (
        "index for site 'siteA' (model fake) is up to date; "
        "nothing to do (use --force to rebuild)\n"
    )
    sites = run(runner, workspace, "sites", "--format", "json")
    assert json.loads(sites.output)[0]["indexes"] == "fake (fresh)"


def test_map_prints_a_table_and_summary(runner, indexed):
    result = run(
        runner,
        indexed,
        "map",
        "--source",
        "siteB",
        "--target",
        "siteA",
        "--model",
        "fake",
        "--k",
        "2",
        "--limit",
        "2",
    )
    assert result.exit_code == 0
    lines = normalise(result.output).splitlines()
    assert lines[0].split() == [
        "source_code",
        "source_description",
        "target_code",
        "target_description",
        "score",
    ]
    assert len(lines) == 2 + 2 + 2
    assert lines[4] == (
        "... 2 more rows (use --limit 0, --output FILE.csv, or 'harmonize sql' on mapped_concepts)"
    )
    assert lines[5] == (
        "mapped 4 of 4 'siteB' concepts onto 'siteA' (model fake, strategy best, "
        "k=2, min-score none) in <t>s; run <id>"
    )


def test_sql_formats(runner, indexed):
    run(runner, indexed, "map", "--source", "siteB", "--target", "siteA", "--model", "fake")
    query = (
        "SELECT source_code, target_code, round(score, 3) AS score FROM mapped_concepts "
        "WHERE source_site = 'siteB' ORDER BY source_code LIMIT 2"
    )
    assert run(runner, indexed, "sql", query, "--format", "csv").output == (
        "source_code,target_code,score\nB1,A2,1.0\nB2,A3,1.0\n"
    )
    assert json.loads(run(runner, indexed, "sql", query, "--format", "json").output) == [
        {"source_code": "B1", "target_code": "A2", "score": 1.0},
        {"source_code": "B2", "target_code": "A3", "score": 1.0},
    ]
    assert run(runner, indexed, "sql", query).output == (
        "source_code    target_code      score\n"
        "-------------  -------------  -------\n"
        "B1             A2               1.000\n"
        "B2             A3               1.000\n"
    )


def test_query_unmapped_and_list(runner, indexed):
    run(
        runner,
        indexed,
        "map",
        "--source",
        "siteA",
        "--target",
        "siteB",
        "--model",
        "fake",
        "--min-score",
        "0.99",
    )
    result = run(
        runner,
        indexed,
        "query",
        "unmapped",
        "--param",
        "source",
        "siteA",
        "--param",
        "target",
        "siteB",
        "--format",
        "csv",
    )
    assert result.output == "code,description\nA5,muscle pain\n"
    listing = run(runner, indexed, "query", "--list", "--format", "json")
    names = {q["query"]: q["params"] for q in json.loads(listing.output)}
    assert names["unmapped"] == "source, target" and names["mapping_summary"] == "-"
    assert names["recode_events"] == "source, target"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["query", "unmapped", "--param", "source", "siteA"],
            "Error: query 'unmapped' needs parameter 'target'. Add: --param target VALUE\n",
        ),
        (
            [
                "query",
                "unmapped",
                "--param",
                "source",
                "a",
                "--param",
                "target",
                "b",
                "--param",
                "site",
                "x",
            ],
            "Error: unknown parameter 'site' for query 'unmapped'. It takes: source, target.\n",
        ),
        (
            ["query", "nosuch"],
            "Error: unknown query 'nosuch'. Known queries: mapping_summary, recode_events, "
            "review, site_concepts, unmapped. See 'harmonize query --list'.\n",
        ),
        (
            ["map", "--source", "siteX", "--target", "siteA", "--model", "fake"],
            "Error: unknown site 'siteX'. Known sites: siteA, siteB. "
            "Run 'harmonize add-site siteX --vocab FILE' first.\n",
        ),
        (
            ["map", "--source", "siteB", "--target", "siteA", "--model", "lexical"],
            "Error: no index for site 'siteB' with model lexical. "
            "Run 'harmonize build-index --site siteB --model lexical' first.\n",
        ),
        (
            ["map", "--source", "siteB", "--target", "siteA", "--model", "nosuch"],
            "Error: unknown model 'nosuch'. Use minilm, minilm-int8, minilm-adapted, lexical, "
            "hf-cls:PATH, "
            "hf-mean:PATH, precomputed:FILE.parquet, or the path of a local "
            "sentence-transformers folder.\n",
        ),
        (
            ["sql", "DELETE FROM concepts"],
            'Error: SQL failed: Invalid Input Error: Cannot execute statement of type "DELETE" '
            'on database "harmonize" which is attached in read-only mode!\n',
        ),
        (["build-index", "--site", "siteA", "--model", "fake", "--device", "gpu"], None),
    ],
)
def test_errors_exit_1_and_change_nothing(runner, indexed, args, message):
    before = snapshot(indexed)
    result = run(runner, indexed, *args)
    assert result.exit_code == 1
    if message is not None:
        assert result.output == message
    else:
        assert result.output.startswith("Error: --device gpu:")
    assert snapshot(indexed) == before


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        (
            "code,label\nA1,x\n",
            ".csv",
            "{p}: missing required column 'description' "
            "(required: code, description; found: code, label)",
        ),
        (
            "code,description\nA1,x\nA1,y\n",
            ".csv",
            "{p}, line 3: duplicate code 'A1' in column 'code' (first seen on line 2)",
        ),
        (
            "code,description\nA1,x\nA2, \n",
            ".csv",
            "{p}, line 3: empty value in column 'description'",
        ),
        (
            b"code,description\nA1,caf\xe9\n",
            ".csv",
            "{p} is not valid UTF-8: byte 0xe9 on line 2. Re-save the file as UTF-8.",
        ),
        ("", ".csv", "{p} is empty: expected a header line and rows"),
    ],
)
def test_bad_vocabulary_leaves_workspace_unchanged(
    runner, indexed, tmp_path, content, suffix, message
):
    bad = tmp_path / f"bad{suffix}"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        bad.write_text(content)
    before = snapshot(indexed)
    result = run(runner, indexed, "add-site", "siteA", "--vocab", str(bad), "--replace")
    assert result.exit_code == 1
    assert result.output == "Error: " + message.format(p=bad) + "\n"
    assert snapshot(indexed) == before


def test_bad_vocabulary_in_a_new_folder_creates_no_workspace(runner, workspace, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code\nA1\n")
    result = run(runner, workspace, "add-site", "siteA", "--vocab", str(bad))
    assert result.exit_code == 1
    assert not workspace.db_path.exists()


def test_existing_site_needs_replace(runner, indexed, vocab_files):
    before = snapshot(indexed)
    result = run(runner, indexed, "add-site", "siteA", "--vocab", str(vocab_files["b"]))
    assert result.exit_code == 1
    assert result.output == (
        f"Error: site 'siteA' already exists in {indexed.root}. "
        "Use 'harmonize add-site siteA --vocab FILE --replace' to replace it.\n"
    )
    assert snapshot(indexed) == before
    replaced = run(
        runner, indexed, "add-site", "siteA", "--vocab", str(vocab_files["b"]), "--replace"
    )
    assert replaced.output == "replaced site 'siteA': 4 concepts\n"


def test_unsafe_site_name_is_refused(runner, workspace, vocab_files):
    result = run(runner, workspace, "add-site", "../x", "--vocab", str(vocab_files["a"]))
    assert result.exit_code == 1
    assert result.output == (
        "Error: invalid site name '../x': use 1-64 letters, digits, '_', '-' or '.', "
        "starting with a letter or digit\n"
    )


def test_usage_errors_exit_1(runner, workspace):
    result = run(runner, workspace, "map", "--sourc", "x")
    assert result.exit_code == 1
    assert "Error: No such option '--sourc'. Did you mean '--source'?" in result.output


def test_commands_need_a_workspace(runner, workspace):
    result = run(runner, workspace, "sites")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: no harmonize workspace at {workspace.root} (no harmonize.duckdb). "
        "Run 'harmonize add-site NAME --vocab FILE' there first, or pass --workspace DIR.\n"
    )


def test_workspace_from_environment(runner, workspace, vocab_files):
    result = runner.invoke(
        cli,
        ["add-site", "siteA", "--vocab", str(vocab_files["a"])],
        env={"HARMONIZE_WORKSPACE": str(workspace.root)},
    )
    assert result.exit_code == 0 and workspace.db_path.is_file()


def test_stale_index_is_refused_with_the_rebuild_command(runner, indexed, vocab_files, tmp_path):
    edited = tmp_path / "a2.csv"
    edited.write_text(vocab_files["a"].read_text().replace("dry cough", "cough"))
    run(runner, indexed, "add-site", "siteA", "--vocab", str(edited), "--replace")
    sites = run(runner, indexed, "sites", "--format", "csv")
    assert "siteA,5,0,0,fake (stale)" in sites.output
    result = run(
        runner, indexed, "map", "--source", "siteB", "--target", "siteA", "--model", "fake"
    )
    assert result.exit_code == 1
    assert result.output == (
        "Error: index for site 'siteA' (model fake) is stale: the site's vocabulary changed since "
        "the index was built. Run 'harmonize build-index --site siteA --model fake --force'.\n"
    )


# --- start-up, shared options, old spellings --------------------------------------------


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = f"{code}; import sys; print(sorted(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_importing_the_cli_loads_no_heavy_library():
    assert _loaded_after("import harmonize.cli", HEAVY) == []


def test_help_loads_no_data_library():
    code = "from harmonize.cli import cli; cli.main(['--help'], standalone_mode=False)"
    assert _loaded_after(code, HEAVY + DATA) == []


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option)]


def test_shared_options_are_spelled_alike_everywhere():
    """-o/--output wherever a file is written, one seed default, no visible old spelling."""
    for name, command in cli.commands.items():
        for option in _options(command):
            if option.name == "output":
                assert option.opts == ["-o", "--output"], name
            if option.name == "seed":
                assert option.default == RANDOM_STATE, name
            if option.hidden:
                assert not any(o in command.get_help(click.Context(command)) for o in option.opts)
    assert {o.name for o in _options(cli.commands["export-events"])} >= {"source", "target"}


def test_old_export_events_flags_still_work_and_say_what_to_use(runner, mapped_ba, tmp_path):
    args = ["export-events", "--site", "siteB", "--into", "siteA", "-o", str(tmp_path / "e")]
    result = run(runner, mapped_ba, *args)
    assert result.exit_code == 1
    assert result.stderr == (
        "Note: --site is now --source\n"
        "Note: --into is now --target\n"
        "Error: no events of 'siteB' map onto 'siteA'. "
        "Run 'harmonize map --source siteB --target siteA' first.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "siteA"], "Error: Missing option '--source'."),
        (["--source", "siteB", "--site", "siteB", "--target", "siteA"], "give only --source"),
    ],
)
def test_export_events_needs_one_spelling_of_each_site(runner, indexed, tmp_path, args, message):
    result = run(runner, indexed, "export-events", *args, "-o", str(tmp_path / "e"))
    assert result.exit_code == 1
    assert message in result.output


@pytest.fixture
def evaluate_config(monkeypatch):
    """evaluate stops where it would train, saying which embedding and classifier it got."""
    from harmonize.transfer import experiment

    def stop(ws, config, progress=False):
        raise HarmonizeError(f"embedding {config.embedding}, classifier {config.model}")

    monkeypatch.setattr(experiment, "run_evaluation", stop)


@pytest.mark.parametrize(
    ("args", "notes", "got"),
    [
        (["--model", "fake", "--classifier", "logreg"], "", "fake, classifier logreg"),
        (["--embedding", "fake"], "Note: --embedding is now --model\n", "fake, classifier auto"),
        (
            ["--embedding", "fake", "--model", "logreg"],
            "Note: --model logreg (the classifier) is now --classifier logreg\n"
            "Note: --embedding is now --model\n",
            "fake, classifier logreg",
        ),
        (
            ["--model", "cnn"],
            "Note: --model cnn (the classifier) is now --classifier cnn\n",
            "minilm, classifier cnn",
        ),
    ],
)
def test_evaluate_model_is_the_embedding_and_old_spellings_still_work(
    runner, indexed, evaluate_config, args, notes, got
):
    result = run(runner, indexed, "evaluate", "--source", "siteA", "--target", "siteB", *args)
    assert (result.exit_code, result.stderr) == (1, f"{notes}Error: embedding {got}\n")


@pytest.mark.parametrize(
    "args",
    [
        ["--embedding", "fake", "--model", "lexical"],
        ["--model", "logreg", "--classifier", "cnn"],
    ],
)
def test_evaluate_refuses_both_spellings(runner, indexed, evaluate_config, args):
    result = run(runner, indexed, "evaluate", "--source", "siteA", "--target", "siteB", *args)
    assert result.exit_code == 1
    assert "Error: " in result.output and "give only" in result.output


def test_eval_map_prints_csv_like_every_table(runner, mapped_ba, tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("source_code,target_code\nB1,A2\n")
    args = ("eval-map", "--source", "siteB", "--target", "siteA", "--gold", str(gold))
    result = run(runner, mapped_ba, *args, "--format", "csv")
    assert result.exit_code == 0, result.output
    header, row = result.output.splitlines()
    assert header.split(",")[:3] == ["n", "top1", "top5"] and row.startswith("1,1.0,1.0")
