"""Every pure C core in usermods/ compiles warning-free for an Xtensa core, and its code size is recorded.

The ESP32-S3's compiler (xtensa-esp32s3-elf, ESP-IDF) is not installable here; Debian's gcc-xtensa-lx106 (ESP8266's
LX106 core, with picolibc-xtensa-lx106-elf for the C library headers) is. A different core than the S3's LX7, but
it catches C that is not portable to a 32-bit Xtensa target or that promotes floats to double. A pure core is a .c
file in usermods/*/ that reaches no MicroPython header (py/, extmod/, shared/, mp*.h), following its quoted includes
through the module folders; cores are discovered at run time, so new modules are checked without editing this file.
The .text size of each core is written to bench/results/codesize.md as the estimate of its flash cost.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinysense.paths import REPO

USERMODS = REPO / "usermods"
REPORT = REPO / "bench" / "results" / "codesize.md"
CC = "xtensa-lx106-elf-gcc"
SIZE = "xtensa-lx106-elf-size"
PICOLIBC_SPECS = Path("/usr/lib/xtensa-lx106-elf/picolibc.specs")
CFLAGS = ["-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion", "-Wfloat-conversion"]
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]', re.M)
MICROPYTHON_HEADER = re.compile(r"^(py|extmod|shared|ports)/|^mp[a-z_]*\.h$|^genhdr/")


@dataclass
class Core:
    module: str
    source: Path
    needs_emlearn: bool


def classify(source: Path) -> tuple[bool, bool]:
    """(pure, needs_emlearn) for a C file, following quoted includes found in its folder or another module's."""
    folders = [source.parent, *sorted(d for d in source.parent.parent.iterdir() if d.is_dir())]
    seen: set[Path] = set()
    todo = [source]
    needs_emlearn = False
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for kind, name in INCLUDE.findall(path.read_text(encoding="utf-8", errors="replace")):
            if MICROPYTHON_HEADER.search(name):
                return False, needs_emlearn
            if name.startswith("eml_"):
                needs_emlearn = True
            if kind == '"':
                found = [folder / name for folder in [path.parent, *folders] if (folder / name).is_file()]
                todo += [found[0].resolve()] if found else []
    return True, needs_emlearn


def discover(usermods: Path = USERMODS) -> list[Core]:
    cores = []
    for source in sorted(usermods.glob("*/*.c")):
        pure, needs_emlearn = classify(source)
        if pure:
            cores.append(Core(source.parent.name, source, needs_emlearn))
    return cores


def emlearn_include() -> Path:
    cached = REPO / ".cache" / "emlearn-0.23.2" / "emlearn"
    if (cached / "eml_common.h").is_file():
        return cached
    out = subprocess.run(["python3", str(REPO / "tools" / "fetch_sources.py"), "emlearn"], capture_output=True,
                         text=True, timeout=300)
    if out.returncode != 0:
        pytest.fail(f"no emlearn headers: {out.stderr.strip()}")
    return Path(out.stdout.strip().splitlines()[-1])


def toolchain() -> None:
    missing = [tool for tool in (CC, SIZE) if shutil.which(tool) is None]
    if missing or not PICOLIBC_SPECS.is_file():
        pytest.fail("the Xtensa check needs Debian's gcc-xtensa-lx106 and picolibc-xtensa-lx106-elf "
                    "(tools/ensure_system_deps.sh installs them; as root: apt-get install -y gcc-xtensa-lx106 "
                    "picolibc-xtensa-lx106-elf)")


def compile_core(core: Core, out: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    obj = out / f"{core.module}__{core.source.stem}.o"
    cmd = [CC, f"--specs={PICOLIBC_SPECS}", *CFLAGS, "-I", str(core.source.parent)]
    # A core may use another module's header (the module's micropython.mk adds that folder too).
    for folder in sorted(d for d in core.source.parent.parent.iterdir() if d.is_dir() and d != core.source.parent):
        cmd += ["-I", str(folder)]
    if core.needs_emlearn:
        cmd += ["-isystem", str(emlearn_include())]
    cmd += ["-c", str(core.source), "-o", str(obj)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120), obj


def text_size(obj: Path) -> int:
    out = subprocess.run([SIZE, str(obj)], capture_output=True, text=True, timeout=30, check=True).stdout
    return int(out.splitlines()[1].split()[0])


def write_report(rows: list[tuple[str, str, int]], path: Path = REPORT) -> None:
    lines = [
        "# codesize",
        "",
        "`.text` bytes of each pure C core in usermods/ (no MicroPython binding), compiled by tests/test_xtensa.py",
        f"with Debian's `xtensa-lx106-elf-gcc {' '.join(CFLAGS)}`:",
        "an estimate of the flash each core costs on the ESP32-S3 (a different Xtensa core, LX106 not LX7, and without",
        "the binding code; the real image is built by CI).",
        "",
        "| module | core | .text (bytes) |",
        "|---|---|---:|",
    ]
    lines += [f"| {module} | {source} | {size:,} |" for module, source, size in rows]
    total = sum(size for _, _, size in rows)
    lines += [f"| **total** | | **{total:,}** |", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def test_pure_cores_are_found_and_bindings_are_not() -> None:
    cores = {core.source.name: core for core in discover()}
    assert {"fft_core.c", "iir_core.c", "trees.c", "arrayutils.c"} <= set(cores)
    assert not any(name.startswith("mod_") for name in cores)
    for source in USERMODS.glob("*/mod_*.c"):
        assert not classify(source)[0], source


def test_pure_cores_compile_for_xtensa_without_warnings_and_sizes_are_written(tmp_path: Path) -> None:
    toolchain()
    rows = []
    failures = {}
    for core in discover():
        proc, obj = compile_core(core, tmp_path)
        if proc.returncode != 0:
            failures[f"{core.module}/{core.source.name}"] = proc.stderr.strip()[-2000:]
        else:
            rows.append((core.module, core.source.name, text_size(obj)))
    assert failures == {}
    write_report(rows)
    report = REPORT.read_text(encoding="utf-8")
    assert "| emlearn_fft | fft_core.c |" in report and all(size > 0 for _, _, size in rows)


def test_xtensa_check_fails_on_double_promotion_and_sees_through_local_headers(tmp_path: Path) -> None:
    toolchain()
    module = tmp_path / "usermods" / "bad_mod"
    module.mkdir(parents=True)
    (module / "bad.c").write_text('#include <math.h>\nfloat half(float x) { return x * 0.5; }\n')
    (module / "glue.h").write_text('#include "py/obj.h"\n')
    (module / "wrapper.c").write_text('#include "glue.h"\n')
    (module / "uses_eml.c").write_text('#include "eml_common.h"\n')
    cores = {core.source.name: core for core in discover(tmp_path / "usermods")}
    assert set(cores) == {"bad.c", "uses_eml.c"} and cores["uses_eml.c"].needs_emlearn
    proc, _ = compile_core(cores["bad.c"], tmp_path)
    assert proc.returncode != 0 and "double" in proc.stderr
