"""pipecat's log lines still reach standard error after a command swapped it out and closed it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner


@pytest.mark.parametrize("command", ["simulate", "serve"])
def test_a_log_line_after_a_command_is_written_not_a_logging_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from loguru import logger

    from tars.cli.simulate import QuietLogs
    from tars.logs import install

    with CliRunner().isolation():  # what `tars` under CliRunner (or a daemon) runs inside
        if command == "simulate":
            with QuietLogs(verbose=False):
                logger.warning("during the report")  # quiet: not shown at all
        else:
            install("info")  # what `tars serve` sets up
    logger.warning("after the command")  # the command's stream is closed by now
    err = capsys.readouterr().err
    assert "after the command" in err
    assert "Logging error" not in err and "closed file" not in err
    assert "during the report" not in err
