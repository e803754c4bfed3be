"""docker/: the build image's recipe and pins, `tinysense build` (no Docker engine here) and the metadata script.

Nothing can be built here (no Docker engine, no ESP-IDF): the Dockerfile is parsed and checked against the pins
(docker/versions.env, sources.lock), and `tinysense build` is run against a stand-in `docker` command.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tinysense.cli import main
from tinysense.commands import build
from tinysense.paths import REPO

DOCKERFILE = REPO / "docker" / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, rest = line.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def dockerfile_problems(path: Path, pins: dict[str, str]) -> list[str]:
    steps = instructions(path)
    problems = []
    froms = [args for keyword, args in steps if keyword == "FROM"]
    if froms != [f"espressif/idf:{pins['ESP_IDF_VERSION']}"]:
        problems.append(f"FROM is {froms}, not espressif/idf:{pins['ESP_IDF_VERSION']}")
    args = {args.split("=")[0]: "=" in args for keyword, args in steps if keyword == "ARG"}
    for name in build.BUILD_ARGS:
        if name not in args:
            problems.append(f"ARG {name} is not declared")
        elif args[name]:
            problems.append(f"ARG {name} has a default: pins come from versions.env / sources.lock only")
    runs = " ".join(args for keyword, args in steps if keyword == "RUN")
    expected = {
        "MicroPython tag checkout": r'git clone [^;&]*--branch "\$MICROPYTHON_TAG"[^;&]*micropython/micropython',
        "mpy-cross build": r"make -C /opt/micropython/mpy-cross",
        "exact emlearn install": r'pip install [^;&]*"emlearn==\$EMLEARN_VERSION"',
        "camera module checkout": r'--branch "\$CAMERA_API_TAG"[^;&]*cnadler86/micropython-camera-API',
    }
    problems += [f"no {what}" for what, pattern in expected.items() if not re.search(pattern, runs)]
    copied = " ".join(args for keyword, args in steps if keyword == "COPY").split()
    for name in copied[:-1]:
        if not (path.parent / name).is_file():
            problems.append(f"COPY {name}: no such file in docker/")
    return problems


def test_dockerfile_uses_the_pinned_base_image_and_versions() -> None:
    pins = build.versions()
    assert pins["ESP_IDF_VERSION"] == "v5.5.1"
    assert re.fullmatch(r"v1\.\d+\.\d+", pins["MICROPYTHON_TAG"])
    assert pins["EMLEARN_VERSION"] == "0.23.2"   # sources.lock, the same pin as the host build
    assert dockerfile_problems(DOCKERFILE, pins) == []


def test_dockerfile_check_fails_on_wrong_pins(tmp_path: Path) -> None:
    pins = build.versions()
    broken = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text(encoding="utf-8")
    broken.write_text(text.replace("FROM espressif/idf:v5.5.1", "FROM espressif/idf:latest")
                      .replace("ARG EMLEARN_VERSION", "ARG EMLEARN_VERSION=0.22.0")
                      .replace('"emlearn==$EMLEARN_VERSION"', "emlearn"), encoding="utf-8")
    problems = dockerfile_problems(broken, pins)
    assert any("espressif/idf:latest" in p for p in problems)
    assert any("EMLEARN_VERSION has a default" in p for p in problems)
    assert "no exact emlearn install" in problems
    assert any("COPY build-firmware.sh" in p for p in problems)


def test_build_dry_run_prints_the_docker_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "s3-eye", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    docker_build, docker_run = (shlex.split(line) for line in lines)
    pins = build.versions()
    assert docker_build[:2] == ["docker", "build"] and docker_build[-1] == str(REPO / "docker")
    for name in build.BUILD_ARGS:
        assert f"{name}={pins[name]}" in docker_build
    assert docker_run[:3] == ["docker", "run", "--rm"] and f"{REPO}:{build.CONTAINER_REPO}" in docker_run
    assert docker_run[-3:] == [build.BUILD_SCRIPT, "s3-eye", "s3-eye"]
    assert main(["build", "generic-s3-spiram-oct", "--dry-run"]) == 0
    assert capsys.readouterr().out.split()[-3:] == ["generic-s3-spiram-oct", "generic-s3", "SPIRAM_OCT"]


def fake_docker(tmp_path: Path, info_status: int) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\n'
                      f'[ "$1" = info ] && {{ echo "Cannot connect to the Docker daemon" >&2; exit {info_status}; }}\n'
                      "exit 0\n")
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_build_without_a_docker_engine_says_so_and_points_to_download(tmp_path: Path) -> None:
    env = fake_docker(tmp_path, info_status=1)
    proc = subprocess.run([sys.executable, "-m", "tinysense.cli", "build", "atoms3"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1
    assert "docker build --tag" in proc.stdout
    assert "no Docker engine" in proc.stderr and "tinysense download --board atoms3" in proc.stderr
    assert (tmp_path / "calls").read_text().split() == ["info"]


def test_build_with_an_engine_runs_build_then_run(tmp_path: Path) -> None:
    env = fake_docker(tmp_path, info_status=0)
    proc = subprocess.run([sys.executable, "-m", "tinysense.cli", "build", "atoms3"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [call.split()[0] for call in calls] == ["info", "build", "run"]


def test_unknown_board_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "esp32-cam", "--dry-run"]) == 1
    assert "unknown board 'esp32-cam'" in capsys.readouterr().err


def test_metadata_script_writes_checksum_and_json(tmp_path: Path) -> None:
    dist = tmp_path / "dist" / "s3-eye"
    dist.mkdir(parents=True)
    firmware = bytes(range(256)) * 64
    (dist / "firmware.bin").write_bytes(firmware)
    frozen = tmp_path / "build" / "frozen_mpy"
    (frozen / "drivers").mkdir(parents=True)
    (frozen / "board_pins.mpy").write_bytes(b"M")
    (frozen / "drivers" / "i2s_mic.mpy").write_bytes(b"M")
    env = {**os.environ, "TINYSENSE_MICROPYTHON_TAG": "v1.28.0", "TINYSENSE_EMLEARN_VERSION": "0.23.2",
           "TINYSENSE_ESP_IDF_VERSION": "v5.5.1", "TINYSENSE_CAMERA_API_TAG": "v0.5.0", "TINYSENSE_GIT_COMMIT": "abc"}
    proc = subprocess.run([sys.executable, str(REPO / "docker" / "write_metadata.py"), "--dist", str(dist),
                           "--image", "s3-eye", "--folder", "s3-eye", "--repo", str(REPO),
                           "--user-c-modules", str(REPO / "boards" / "s3-eye" / "usermods.cmake"),
                           "--build-dir", str(tmp_path / "build")], capture_output=True, text=True, env=env,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    digest = hashlib.sha256(firmware).hexdigest()
    assert (dist / "firmware.bin.sha256").read_text() == f"{digest}  firmware.bin\n"
    meta = json.loads((dist / "firmware.json").read_text())
    assert meta["board"] == "s3-eye" and meta["flash_offset"] == "0x0" and meta["sha256"] == digest
    assert meta["micropython"] == "v1.28.0" and meta["emlearn"] == "0.23.2" and meta["camera_api"] == "v0.5.0"
    assert meta["git_commit"] == "abc" and meta["c_modules"][-1] == "camera" and "emlearn_fft" in meta["c_modules"]
    assert meta["frozen_modules"] == ["board_pins", "drivers.i2s_mic"]
    (dist / "firmware.bin").unlink()
    proc = subprocess.run([sys.executable, str(REPO / "docker" / "write_metadata.py"), "--dist", str(dist),
                           "--image", "x", "--folder", "x", "--repo", str(REPO), "--user-c-modules", "x"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "does not exist" in proc.stderr


def test_entry_script_is_valid_bash_and_refuses_to_run_outside_the_image(tmp_path: Path) -> None:
    script = REPO / "docker" / "build-firmware.sh"
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "MICROPYTHON_DIR"}
    proc = subprocess.run(["bash", str(script), "atoms3", "atoms3"], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=30)
    assert proc.returncode != 0 and "MICROPYTHON_DIR" in proc.stderr
    proc = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "dist/<IMAGE>/firmware.bin" in proc.stdout
