"""tools/ensure_system_deps.sh: installs Debian packages as root, prints the apt-get line otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tinysense.paths import REPO

SCRIPT = REPO / "tools" / "ensure_system_deps.sh"


def run_script(extra: str, as_user: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"], "TINYSENSE_EXTRA_PACKAGES": extra}
    cmd = ["bash", str(SCRIPT)]
    if as_user:
        cmd = ["setpriv", f"--reuid={as_user}", f"--regid={as_user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_everything_installed_is_silent_success() -> None:
    proc = run_script("")
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_non_root_gets_the_exact_apt_get_line() -> None:
    # A package that is surely not installed: as an unprivileged user the script must not try apt-get.
    proc = run_script("tinysense-no-such-package", as_user="65534")
    assert proc.returncode == 1
    assert "  sudo apt-get install -y tinysense-no-such-package\n" in proc.stderr
