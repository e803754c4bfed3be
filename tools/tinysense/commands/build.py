"""`tinysense build`: a board's firmware image, built with ESP-IDF in the Docker recipe (docker/).

It builds the image of docker/Dockerfile (pins from docker/versions.env, emlearn from sources.lock) and runs
docker/build-firmware.sh in it with the repository mounted, which writes dist/<BOARD>/firmware.bin (flash at 0x0),
firmware.bin.sha256 and firmware.json. The exact docker commands are printed first; --dry-run stops there.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
from pathlib import Path

from tinysense.boards import DEFAULT_BOARD, board_image, known_boards
from tinysense.errors import CommandError
from tinysense.paths import REPO

NAME = "build"
HELP = "build a board's firmware image with ESP-IDF in Docker (writes dist/<BOARD>/firmware.bin)"

DOCKER_DIR = REPO / "docker"
VERSIONS_FILE = DOCKER_DIR / "versions.env"
SOURCES_LOCK = REPO / "sources.lock"
CONTAINER_REPO = "/work/tinysense"
BUILD_SCRIPT = "/opt/tinysense/build-firmware.sh"
# Build args of docker/Dockerfile, all required.
BUILD_ARGS = ("MICROPYTHON_TAG", "EMLEARN_VERSION", "CAMERA_API_TAG")
TIMEOUT_S = 4 * 3600


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines skipped), as docker/versions.env holds them."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise CommandError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}; fix the file")
        values[key] = value.strip()
    return values


def lock_version(name: str, lock: Path = SOURCES_LOCK) -> str:
    """The version sources.lock pins for `name` (columns: name, pypi-project, version, kind, file, sha256)."""
    for raw in lock.read_text(encoding="utf-8").splitlines():
        fields = raw.split()
        if fields and not fields[0].startswith("#") and fields[0] == name and len(fields) >= 3:
            return fields[2]
    raise CommandError(f"{lock} pins no {name!r}; restore the line from git")


def versions() -> dict[str, str]:
    """Every pin of the build image: docker/versions.env plus EMLEARN_VERSION from sources.lock."""
    pins = read_env_file(VERSIONS_FILE)
    pins["EMLEARN_VERSION"] = lock_version("emlearn")
    missing = [name for name in (*BUILD_ARGS, "ESP_IDF_VERSION") if not pins.get(name)]
    if missing:
        raise CommandError(f"{VERSIONS_FILE} lacks {', '.join(missing)}; restore it from git")
    return pins


def image_tag(pins: dict[str, str]) -> str:
    return f"tinysense-firmware:mpy-{pins['MICROPYTHON_TAG']}-idf-{pins['ESP_IDF_VERSION']}"


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def docker_commands(board: str, tag: str | None = None) -> list[list[str]]:
    """`docker build` of the build image, then `docker run` of build-firmware.sh for `board`."""
    image = board_image(board)
    pins = versions()
    tag = tag or image_tag(pins)
    build = ["docker", "build", "--tag", tag, "--file", str(DOCKER_DIR / "Dockerfile")]
    for name in BUILD_ARGS:
        build += ["--build-arg", f"{name}={pins[name]}"]
    build.append(str(DOCKER_DIR))
    run = ["docker", "run", "--rm", "--volume", f"{REPO}:{CONTAINER_REPO}", "--workdir", CONTAINER_REPO,
           "--env", f"TINYSENSE_GIT_COMMIT={git_commit()}",
           "--env", f"HOST_UID={os.getuid()}", "--env", f"HOST_GID={os.getgid()}",
           tag, BUILD_SCRIPT, image.name, image.folder]
    if image.variant:
        run.append(image.variant)
    return [build, run]


def docker_engine_problem() -> str | None:
    """Why no container can be run here, or None when a Docker engine answers."""
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        return f"`docker info` failed ({error})"
    if info.returncode != 0:
        reason = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"no Docker engine answers `docker info` ({reason})"
    return None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("board", nargs="?", default=DEFAULT_BOARD,
                        help=f"board image: {', '.join(known_boards())} (default {DEFAULT_BOARD})")
    parser.add_argument("--dry-run", action="store_true", help="print the docker commands, run nothing")
    parser.add_argument("--tag", help="name of the build image (default: from the pinned versions)")


def run(args: argparse.Namespace) -> int:
    commands = docker_commands(args.board, args.tag)
    for command in commands:
        print(shlex.join(command))
    if args.dry_run:
        return 0
    problem = docker_engine_problem()
    if problem:
        raise CommandError(
            f"cannot build {args.board} here: {problem}. Run the commands above on a machine with Docker, "
            f"or flash a prebuilt image: `tinysense download --board {args.board}` then `tinysense flash`"
        )
    for command in commands:
        try:
            done = subprocess.run(command, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise CommandError(f"`{shlex.join(command[:3])} …` ran past {TIMEOUT_S} s; run it again") from None
        if done.returncode != 0:
            raise CommandError(f"`{shlex.join(command[:3])} …` failed (exit {done.returncode}); see its output above")
    out = REPO / "dist" / args.board
    print(f"built {out / 'firmware.bin'} (flash at 0x0), with firmware.bin.sha256 and firmware.json")
    return 0
