# SPDX-License-Identifier: Apache-2.0
"""The README's promises: two quick-start commands, CI runs the test one, snippets run."""

from __future__ import annotations

import re

from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def _fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_quick_start_is_exactly_two_commands():
    quick_start = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", quick_start, flags=re.DOTALL)
    assert len(blocks) == 1
    commands = blocks[0].strip().splitlines()
    assert len(commands) == 2
    assert "-m examples.compare.main" in commands[0] and "pytest" in commands[1]
    assert all(c.startswith("python3 -m venv .venv && ") for c in commands)


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "grep -m1 -E '^python3 -m venv \\.venv && .*pytest' README.md" in ci
    assert 'bash -c "$test_command"' in ci


def test_python_snippets_run():
    snippets = _fenced_blocks("python")
    assert len(snippets) >= 2
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), {"__name__": "readme_snippet"})
