"""`ult` starts fast: the group imports a subcommand only when it is run, and `ult analyze` does not
import Dagster, boto3 or plotly (timings: `python -m ult_pipeline_tests.bench.cli_startup`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from ult_pipeline.cli.main import LAZY_COMMANDS, cli

HEAVY = ("dagster", "boto3", "botocore", "plotly")


def imported_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running `code` in a fresh interpreter."""
    probe = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print("\\nMODULES " + json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
    """)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line.removeprefix("MODULES ")))


def test_importing_the_cli_imports_no_heavy_package():
    loaded = imported_after("import ult_pipeline.cli.main")
    assert not loaded & {*HEAVY, "pandas", "scipy"}, sorted(loaded & {*HEAVY, "pandas", "scipy"})


def test_ult_help_imports_no_subcommand():
    loaded = imported_after("""
        from ult_pipeline.cli.main import cli
        try:
            cli(["--help"], prog_name="ult")
        except SystemExit as exit:
            assert exit.code == 0, exit.code
    """)
    assert not loaded & {*HEAVY, "pandas", "scipy"}, sorted(loaded & {*HEAVY, "pandas", "scipy"})


def test_analyze_imports_neither_dagster_boto3_nor_plotly():
    loaded = imported_after("import ult_pipeline.cli.analyze")
    assert not loaded & {*HEAVY, "ruptures"}, sorted(loaded & {*HEAVY, "ruptures"})


def test_analyze_of_a_small_history_imports_neither_dagster_boto3_nor_plotly(tmp_path):
    from ult_pipeline_tests.analysis.history_fixtures import history

    csv = tmp_path / "history.csv"
    history(6, cv=0.02, seed=2).to_csv(csv, index=False)
    loaded = imported_after(f"""
        from ult_pipeline.cli.main import cli
        try:
            cli(["analyze", {str(csv)!r}], prog_name="ult")
        except SystemExit as exit:
            assert exit.code in (0, 1), exit.code
    """)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_every_subcommand_loads_under_its_name():
    assert cli.list_commands(click.Context(cli)) == sorted(LAZY_COMMANDS)
    for name in LAZY_COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert isinstance(command, click.Command) and command.name == name


def test_the_listing_summaries_match_the_commands_own_help():
    """`ult --help` lists commands from main.LAZY_COMMANDS without importing them: the same lines
    as click makes from each command's help (update the summary when a command's help changes)."""
    for name, (_, summary) in LAZY_COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        stub = click.Command(name, help=summary)
        for limit in (30, 45, 60, 120, 400):
            assert stub.get_short_help_str(limit) == command.get_short_help_str(limit), (name, limit)


def test_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"], prog_name="ult", terminal_width=200)
    assert result.exit_code == 0, result.output
    listed = result.output.split("Commands:", 1)[1].split()
    for name in LAZY_COMMANDS:
        assert name in listed


@pytest.mark.parametrize("args", [["analyze", "--help"], ["sandbox", "--help"], ["target-db", "--help"]])
def test_subcommand_help_through_the_group(args):
    result = CliRunner().invoke(cli, args, prog_name="ult")
    assert result.exit_code == 0, result.output
    assert f"Usage: ult {args[0]}" in result.output


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(cli, ["no-such-command"], prog_name="ult")
    assert result.exit_code == 2 and "No such command" in result.output
