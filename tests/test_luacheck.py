"""The Lua code in lua/ is luacheck-clean under the repository's .luacheckrc."""

import subprocess
from pathlib import Path

from jgsl.wire.codegen import ROOT
from tests.servers import ensure_debian_package


def luacheck(*args: str) -> subprocess.CompletedProcess:
    binary = ensure_debian_package("luacheck", "lua-check")
    return subprocess.run(
        [binary, "--formatter", "plain", "--codes", "--config", str(ROOT / ".luacheckrc"), *args],
        cwd=ROOT, capture_output=True, text=True,
    )


def test_lua_code_is_clean():
    result = luacheck("lua/")
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_allows_lua54_and_sandbox_globals_only(tmp_path: Path):
    script = tmp_path / "script.lua"
    script.write_text(
        "local n <const> = 1\n"  # Lua 5.4 syntax
        "wait(n)\n"  # given by the sandbox
        "undefined_function(n)\n"
    )
    result = luacheck(str(script))
    assert result.returncode == 1
    assert result.stdout.strip() == (
        f"{script}:3:1: (W113) accessing undefined variable 'undefined_function'"
    )
