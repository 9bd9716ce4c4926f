"""Running the CLI in process and checking its failure contract (exit code, one line)."""

from __future__ import annotations

from click.testing import CliRunner

from queuemeasure.cli.main import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def fails(res, code, needle=None):
    """The failure contract: exit code, one 'Error:' line on stderr, nothing on stdout."""
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:"), res.stderr
    assert "Traceback" not in res.output and res.stdout == ""
    if needle:
        assert needle.lower() in lines[0].lower(), lines[0]
    return lines[0]
