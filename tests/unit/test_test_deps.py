"""`make test` and .ci/run share one set-up step: missing Debian packages are installed when it can
(root), otherwise it stops at once with the one command to run."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "test-deps"


def _fake_bin(tmp_path: Path, uid: int, present: tuple[str, ...] = ()) -> Path:
    """A PATH with `id` answering `uid`, an `apt-get` that records its arguments, and the named tools."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {"id": f"echo {uid}", "apt-get": f'echo "$@" >> {tmp_path}/apt.log',
             **{name: "true" for name in present}}
    for name, body in tools.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(bin_dir: Path, dovecot: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/bash", str(SCRIPT)], env={"PATH": str(bin_dir), "DOVECOT": dovecot},
                          capture_output=True, text=True, timeout=30)


def test_without_root_it_stops_at_once_naming_the_one_command(tmp_path):
    done = _run(_fake_bin(tmp_path, 1000), "/nonexistent/dovecot")
    assert done.returncode == 1
    assert "sudo apt-get install -y --no-install-recommends swaks dovecot-imapd chromium" in done.stderr
    assert not (tmp_path / "apt.log").exists()


def test_as_root_it_installs_only_what_is_missing(tmp_path):
    done = _run(_fake_bin(tmp_path, 0, present=("swaks",)), "/nonexistent/dovecot")
    assert done.returncode == 0, done.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq --no-install-recommends dovecot-imapd chromium"]


def test_nothing_missing_means_nothing_done(tmp_path):
    bin_dir = _fake_bin(tmp_path, 1000, present=("swaks", "chromium"))
    done = _run(bin_dir, str(bin_dir / "id"))
    assert done.returncode == 0 and done.stderr == "" and not (tmp_path / "apt.log").exists()


def test_readme_test_command_and_ci_take_the_same_step():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/test-deps" in recipe.splitlines()[1]          # before pytest
    assert "scripts/test-deps" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
