"""The ``twin`` command lines the README and docs/ show are ones the CLI accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from streams.cli.main import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_TAIL = re.compile(r" #| > | \| ")  # a comment, a redirection or a pipe ends the command


def _balanced(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:  # a quoted argument goes on on the next line
        return False
    return True


def _command_lines() -> list[tuple[str, str]]:
    """``twin ...`` lines inside ```sh blocks (continuations and open quotes joined)."""
    out = []
    for doc in DOCS:
        for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", doc.read_text(), re.S):
            pending = ""
            for raw in block.replace("\\\n", " ").splitlines():
                line = f"{pending} {raw.strip()}" if pending else raw
                if not _balanced(line):
                    pending = line
                    continue
                pending = ""
                line = SHELL_TAIL.split(line, maxsplit=1)[0].strip()
                if line.startswith("twin "):
                    out.append((doc.name, line))
    return out


LINES = _command_lines()


def test_the_docs_show_commands() -> None:
    assert len(LINES) >= 10
    assert any("--workers" in line for _, line in LINES)


@pytest.mark.parametrize(("doc", "line"), LINES, ids=[f"{d}:{ln[:50]}" for d, ln in LINES])
def test_documented_command_parses(doc: str, line: str) -> None:
    argv = shlex.split(line)[1:]
    code = 0
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's way of rejecting (or of --help)
        code = int(exc.code or 0)
    else:
        assert callable(args.func)
    assert code == 0, f"{doc}: `{line}` is not a valid command"
