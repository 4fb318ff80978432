"""The docs cannot rot: every option and command the README and docs/ name is one the
programs accept (from their own --help)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
ADMIN_COMMANDS = ("status", "users", "kick", "drain", "undrain", "query", "dump", "reload",
                  "shutdown")


def code_in_docs() -> list[str]:
    """The code blocks and code spans of README.md and docs/*.md."""
    code: list[str] = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text()
        code += re.findall(r"```.*?```", text, re.S) + re.findall(r"`[^`\n]+`", text)
    return code


def options_in(command: list[str]) -> set[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, (command, result.stderr)
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", result.stdout))


def test_every_option_the_docs_name_is_accepted():
    mentioned = set()
    for code in code_in_docs():
        mentioned |= set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", code))
    known = options_in([str(BIN / "twistd"), "--help"])  # (twistd's own: --nodaemon, ...)
    known |= options_in([str(BIN / "twistd"), "jgsl", "--help"])
    for command in ADMIN_COMMANDS:
        known |= options_in([str(BIN / "jgsl-admin"), command, "--help"])
    known |= options_in([str(BIN / "jgsl-load"), "--help"])
    known |= options_in([str(BIN / "jgsl-prosody"), "--help"])
    for bench in sorted((ROOT / "bench").glob("*.py")):
        known |= options_in([sys.executable, str(bench), "--help"])
    assert mentioned and mentioned <= known, sorted(mentioned - known)


def test_every_jgsl_admin_command_the_docs_name_exists():
    named = set()
    for code in code_in_docs():
        for found in re.findall(r"jgsl-admin ([a-z|]+)", code):
            named |= set(found.split("|"))
    result = subprocess.run([str(BIN / "jgsl-admin"), "--help"], capture_output=True,
                            text=True, timeout=60)
    assert named and named <= set(ADMIN_COMMANDS), sorted(named - set(ADMIN_COMMANDS))
    assert all(command in result.stdout for command in ADMIN_COMMANDS)


def test_the_usage_lines_name_every_role_and_no_raw_markup():
    usage = subprocess.run([str(BIN / "twistd"), "jgsl", "--help"], capture_output=True,
                           text=True, timeout=60).stdout
    assert "--role router|gateway|grid|emu|world|client" in usage
    for tool in ("jgsl-admin", "jgsl-load", "jgsl-prosody"):
        text = subprocess.run([str(BIN / tool), "--help"], capture_output=True, text=True,
                              timeout=60).stdout
        assert "``" not in text, tool
