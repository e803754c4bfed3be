"""The ESP32 firmware's user C module list (usermods/micropython.cmake) against the host build's.

The esp32 port cannot be built here (no ESP-IDF), so tests/cmake/ does on the host what the port does
with USER_C_MODULES=usermods/micropython.cmake: include it, gather the sources and include dirs of the
`usermod` target and everything linked to it, and compile them with ports/host's headers and -Werror
flags. These tests check that

* the harness configures and every gathered source compiles warning-free;
* the cmake side lists exactly the sources that ports/host compiles from the micropython.mk files
  (asked of make itself, through ports/host/Makefile and py/py.mk), and every module folder with a
  micropython.mk is included from usermods/micropython.cmake;
* both sides give the same include dirs (-I / -isystem) and definitions (-D);
* each of these checks fails when it should (on a copy of usermods/ that is broken on purpose).

The compile step needs the generated headers (genhdr/) of a completed host build with the same
modules: the one `make host` writes (TINYSENSE_HOST_DIR overrides its root).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tinysense.paths import REPO, host_firmware

HARNESS = REPO / "tests" / "cmake"
USERMODS = REPO / "usermods"
HOST_PORT = REPO / "ports" / "host"
GENERATED_HEADERS = ("qstrdefs.generated.h", "moduledefs.h", "root_pointers.h", "mpversion.h")
TIMEOUT_S = 300
MAKE_MARKER = "@@usermod-var "
# Every kind of source py/py.mk compiles from user C modules (SRC_USERMOD is folded into _C there).
MAKE_SOURCE_VARS = ("SRC_USERMOD_C", "SRC_USERMOD_CXX", "SRC_USERMOD_LIB_C", "SRC_USERMOD_LIB_CXX",
                    "SRC_USERMOD_LIB_ASM")


def clean_env() -> dict[str, str]:
    """The environment without a parent make's job-server settings (e.g. under `make test`)."""
    env = dict(os.environ)
    for key in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"):
        env.pop(key, None)
    return env


def host_build_dir() -> Path:
    """The completed standard host build whose genhdr/ the harness compiles against."""
    build = host_firmware("standard").parent
    missing = [name for name in GENERATED_HEADERS if not (build / "genhdr" / name).exists()]
    if missing:
        pytest.fail(f"no completed host build in {build} (missing genhdr/{missing[0]}): run make host")
    return build


@dataclass
class HarnessRun:
    build_dir: Path
    configure: subprocess.CompletedProcess[str]
    build: subprocess.CompletedProcess[str] | None

    @property
    def ok(self) -> bool:
        return self.configure.returncode == 0 and self.build is not None and self.build.returncode == 0

    @property
    def output(self) -> str:
        parts = [self.configure.stdout, self.configure.stderr]
        if self.build is not None:
            parts += [self.build.stdout, self.build.stderr]
        return "\n".join(parts)

    def explain(self) -> str:
        text = self.output[-6000:]
        if "MP_QSTR_" in self.output and "undeclared" in self.output:
            text = ("(hint: a qstr is missing from the host build's genhdr/: the host build is older than "
                    "usermods/, run make host)\n" + text)
        return text


def run_harness(usermods: Path, build_dir: Path, host_build: Path, *, build: bool = True) -> HarnessRun:
    """Configure (and build) tests/cmake against usermods/micropython.cmake, as the esp32 port reads it."""
    env = clean_env()
    configure = subprocess.run(
        ["cmake", "-S", str(HARNESS), "-B", str(build_dir),
         f"-DUSER_C_MODULES={usermods / 'micropython.cmake'}", f"-DHOST_BUILD_DIR={host_build}"],
        capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    if configure.returncode != 0 or not build:
        return HarnessRun(build_dir, configure, None)
    built = subprocess.run(["cmake", "--build", str(build_dir), "--parallel", "2"],
                           capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    return HarnessRun(build_dir, configure, built)


def cmake_sources(build_dir: Path) -> set[Path]:
    """The sources the harness gathered from the cmake files (usermod_sources.txt)."""
    lines = (build_dir / "usermod_sources.txt").read_text().splitlines()
    return {Path(os.path.realpath(line)) for line in lines if line.strip()}


def make_usermod_vars(usermods: Path) -> dict[str, list[str]]:
    """What ports/host's make (py/py.mk's module loop) collects from the micropython.mk files."""
    names = (*MAKE_SOURCE_VARS, "CFLAGS_USERMOD")
    printed = "".join(f"$(info {MAKE_MARKER}{name} $({name}))" for name in names)
    rule = f"__tinysense_usermod_vars: ; {printed}@:"
    with tempfile.TemporaryDirectory(prefix="tinysense-make-probe-") as probe_build:  # nothing is built there
        proc = subprocess.run(
            ["make", "--no-print-directory", "-s", "-C", str(HOST_PORT), f"USER_C_MODULES={usermods}",
             f"BUILD={probe_build}", "--eval", rule, "__tinysense_usermod_vars"],
            capture_output=True, text=True, timeout=TIMEOUT_S, env=clean_env())
    assert proc.returncode == 0, f"make could not list the user C modules:\n{proc.stdout}\n{proc.stderr}"
    values: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith(MAKE_MARKER):
            name, _, value = line[len(MAKE_MARKER):].partition(" ")
            values[name] = shlex.split(value)
    missing = [name for name in names if name not in values]
    assert not missing, f"make printed no {missing}:\n{proc.stdout}"
    return values


def make_path(name: str, usermods: Path) -> Path:
    """A path as make uses it: relative ones from ports/host or, through vpath, from USER_C_MODULES."""
    path = Path(name)
    if not path.is_absolute():
        path = HOST_PORT / path if (HOST_PORT / path).exists() else usermods / path
    return Path(os.path.realpath(path))


def make_sources(usermods: Path) -> set[Path]:
    """The user C module sources ports/host compiles."""
    values = make_usermod_vars(usermods)
    return {make_path(name, usermods) for var in MAKE_SOURCE_VARS for name in values[var]}


def make_flags(usermods: Path) -> set[str]:
    """CFLAGS_USERMOD's include dirs and definitions as "-I <dir>", "-isystem <dir>", "-D <def>" (others ignored)."""
    tokens = make_usermod_vars(usermods)["CFLAGS_USERMOD"]
    flags = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        for option in ("-isystem", "-I", "-D"):
            if token.startswith(option):
                value = token[len(option):]
                if not value and i + 1 < len(tokens):
                    i += 1
                    value = tokens[i]
                flags.add(f"{option} {value if option == '-D' else make_path(value, usermods)}")
                break
        i += 1
    return flags


def cmake_flags(build_dir: Path) -> set[str]:
    """The include dirs and definitions the cmake targets carry (usermod_flags.txt), paths resolved."""
    flags = set()
    for line in (build_dir / "usermod_flags.txt").read_text().splitlines():
        option, _, value = line.partition(" ")
        if option:
            flags.add(f"{option} {value if option == '-D' else Path(os.path.realpath(value))}")
    return flags


def module_dirs(usermods: Path) -> list[Path]:
    """Folders py/py.mk treats as modules: those holding a micropython.mk."""
    return sorted(mk.parent for mk in usermods.glob("*/micropython.mk"))


def compare_module_lists(usermods: Path, build_dir: Path) -> list[str]:
    """Every way the configured harness (cmake side) and the micropython.mk files (make side) disagree."""
    root = Path(os.path.realpath(usermods))
    from_cmake = cmake_sources(build_dir)
    from_make = make_sources(usermods)
    problems = []
    for folder in module_dirs(usermods):
        real = Path(os.path.realpath(folder))
        if not (folder / "micropython.cmake").exists():
            problems.append(f"module {folder.name} has a micropython.mk but no micropython.cmake")
        if not any(real in src.parents for src in from_cmake):
            problems.append(f"module {folder.name} has a micropython.mk but {usermods.name}/micropython.cmake "
                            f"does not include it (no source of {folder.name}/ reaches the usermod target)")

    def shown(path: Path) -> str:
        return str(path.relative_to(root)) if root in path.parents else str(path)

    for src in sorted(from_make - from_cmake):
        problems.append(f"{shown(src)} is compiled by the host build (micropython.mk) "
                        "but listed in no micropython.cmake")
    for src in sorted(from_cmake - from_make):
        problems.append(f"{shown(src)} is listed in a micropython.cmake but the host build does not compile it")
    return problems


def compare_compile_flags(usermods: Path, build_dir: Path) -> list[str]:
    """Include dirs and definitions that only one side gives the modules' sources."""
    from_cmake = cmake_flags(build_dir)
    from_make = make_flags(usermods)
    problems = [f"{flag} is in a micropython.mk (CFLAGS_USERMOD) but in no micropython.cmake"
                for flag in sorted(from_make - from_cmake)]
    problems += [f"{flag} is in a micropython.cmake but in no micropython.mk (CFLAGS_USERMOD)"
                 for flag in sorted(from_cmake - from_make)]
    return problems


# --- the real usermods/ ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def host_build() -> Path:
    return host_build_dir()


@pytest.fixture(scope="module")
def harness(host_build: Path, tmp_path_factory: pytest.TempPathFactory) -> HarnessRun:
    """One configured and built harness for the real usermods/, shared by this module's tests."""
    return run_harness(USERMODS, tmp_path_factory.mktemp("cmake-harness"), host_build)


def test_harness_builds_every_cmake_source(harness: HarnessRun) -> None:
    assert harness.configure.returncode == 0, f"cmake configure failed:\n{harness.explain()}"
    assert harness.ok, f"compiling the usermod sources failed:\n{harness.explain()}"
    sources = cmake_sources(harness.build_dir)
    assert sources, "usermods/micropython.cmake contributes no sources"
    objects = list((harness.build_dir / "CMakeFiles" / "usermod_harness.dir").rglob("*.o"))
    assert len(objects) == len(sources), f"{len(objects)} objects for {len(sources)} sources"


def test_cmake_and_make_compile_the_same_sources(harness: HarnessRun) -> None:
    assert harness.configure.returncode == 0, f"cmake configure failed:\n{harness.explain()}"
    assert module_dirs(USERMODS), "usermods/ holds no module (no */micropython.mk)"
    problems = compare_module_lists(USERMODS, harness.build_dir)
    assert not problems, "usermods/micropython.cmake and the micropython.mk files disagree:\n" + "\n".join(problems)


def test_cmake_and_make_give_the_same_include_dirs_and_defines(harness: HarnessRun) -> None:
    assert harness.configure.returncode == 0, f"cmake configure failed:\n{harness.explain()}"
    problems = compare_compile_flags(USERMODS, harness.build_dir)
    assert not problems, "usermods' cmake and make compile flags disagree:\n" + "\n".join(problems)


# --- the checks must fail on a broken copy --------------------------------------------------------

@pytest.fixture
def usermods_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "usermods"
    shutil.copytree(USERMODS, copy)
    return copy


def copied_sources(harness: HarnessRun, copy: Path) -> list[Path]:
    """The real cmake-listed sources, as paths inside the copy (C files first, then the rest)."""
    real = sorted(cmake_sources(harness.build_dir), key=lambda p: (p.suffix != ".c", str(p)))
    root = Path(os.path.realpath(USERMODS))
    return [copy / src.relative_to(root) for src in real if root in src.parents]


def test_missing_cmake_source_fails_naming_it(harness: HarnessRun, usermods_copy: Path, host_build: Path,
                                               tmp_path: Path) -> None:
    assert harness.ok, f"the harness fails on the real usermods/:\n{harness.explain()}"
    victim = copied_sources(harness, usermods_copy)[0]
    victim.unlink()
    run = run_harness(usermods_copy, tmp_path / "build", host_build)
    assert not run.ok, "the harness accepted a micropython.cmake that lists a missing file"
    assert run.configure.returncode != 0, "a missing source must already fail the configure step"
    assert str(victim) in run.output, f"the failure does not name {victim}:\n{run.output[-3000:]}"


def test_relative_cmake_source_fails(usermods_copy: Path, host_build: Path, tmp_path: Path) -> None:
    """The esp32 port resolves a relative source against ESP-IDF's main component, not the module: refuse it."""
    cmake_file = next(f for f in sorted(usermods_copy.glob("*/micropython.cmake"))
                      if "${CMAKE_CURRENT_LIST_DIR}/" in f.read_text())
    text = cmake_file.read_text()
    start = text.index("${CMAKE_CURRENT_LIST_DIR}/")
    relative = text[start:].split()[0].removeprefix("${CMAKE_CURRENT_LIST_DIR}/").rstrip(")")
    cmake_file.write_text(text[:start] + text[start + len("${CMAKE_CURRENT_LIST_DIR}/"):])
    run = run_harness(usermods_copy, tmp_path / "build", host_build, build=False)
    assert run.configure.returncode != 0, "the harness accepted a relative source path in a micropython.cmake"
    assert "is not an absolute path" in run.output and relative in run.output, run.output[-3000:]


@pytest.mark.parametrize(
    ("injected", "expected"),
    [
        ("int tinysense_harness_probe(void);\nint tinysense_harness_probe(void) { return no_such_symbol; }\n",
         "no_such_symbol"),
        # float arithmetic silently done in double (software-emulated on the S3): only -Wdouble-promotion sees it.
        ("double tinysense_harness_probe(float x);\ndouble tinysense_harness_probe(float x) { return x * 2.0; }\n",
         "-Werror=double-promotion"),
    ],
    ids=["compile-error", "double-promotion"],
)
def test_broken_source_fails_the_build(harness: HarnessRun, usermods_copy: Path, host_build: Path, tmp_path: Path,
                                       injected: str, expected: str) -> None:
    assert harness.ok, f"the harness fails on the real usermods/:\n{harness.explain()}"
    victim = next(src for src in copied_sources(harness, usermods_copy) if src.suffix == ".c")
    victim.write_text(victim.read_text() + "\n" + injected)
    run = run_harness(usermods_copy, tmp_path / "build", host_build)
    assert run.configure.returncode == 0, f"configure failed instead of the build:\n{run.explain()}"
    assert not run.ok, f"the harness compiled {victim.name} with {expected!r} injected"
    assert expected in run.output and victim.name in run.output, run.output[-3000:]


def add_module(usermods: Path, name: str, *, with_cmake: bool) -> None:
    """A module folder with a micropython.mk (and its own micropython.cmake) that nothing includes."""
    folder = usermods / name
    folder.mkdir()
    (folder / f"mod_{name}.c").write_text("int tinysense_orphan_probe(void);\n"
                                          "int tinysense_orphan_probe(void) { return 1; }\n")
    (folder / "micropython.mk").write_text(f"SRC_USERMOD_C += $(USERMOD_DIR)/mod_{name}.c\n")
    if with_cmake:
        (folder / "micropython.cmake").write_text(
            f"add_library(usermod_{name} INTERFACE)\n"
            f"target_sources(usermod_{name} INTERFACE ${{CMAKE_CURRENT_LIST_DIR}}/mod_{name}.c)\n"
            f"target_link_libraries(usermod INTERFACE usermod_{name})\n")


@pytest.mark.parametrize("with_cmake", [True, False], ids=["not-included", "no-micropython-cmake"])
def test_module_missing_from_cmake_list_is_reported(usermods_copy: Path, host_build: Path, tmp_path: Path,
                                                    with_cmake: bool) -> None:
    add_module(usermods_copy, "zz_orphan", with_cmake=with_cmake)
    run = run_harness(usermods_copy, tmp_path / "build", host_build, build=False)
    assert run.configure.returncode == 0, run.explain()
    problems = compare_module_lists(usermods_copy, run.build_dir)
    assert any("module zz_orphan" in p and "does not include it" in p for p in problems), problems
    assert any("zz_orphan/mod_zz_orphan.c is compiled by the host build" in p for p in problems), problems
    if not with_cmake:
        assert any("zz_orphan has a micropython.mk but no micropython.cmake" in p for p in problems), problems


def test_source_only_in_micropython_mk_is_reported(usermods_copy: Path, host_build: Path, tmp_path: Path) -> None:
    baseline_run = run_harness(usermods_copy, tmp_path / "baseline", host_build, build=False)
    assert baseline_run.configure.returncode == 0, baseline_run.explain()
    baseline = set(compare_module_lists(usermods_copy, baseline_run.build_dir))
    folder = module_dirs(usermods_copy)[0]
    (folder / "extra_only_in_mk.c").write_text("int tinysense_extra_probe(void);\n"
                                               "int tinysense_extra_probe(void) { return 2; }\n")
    with (folder / "micropython.mk").open("a") as mk:
        mk.write("\nSRC_USERMOD_C += $(USERMOD_DIR)/extra_only_in_mk.c\n")
    run = run_harness(usermods_copy, tmp_path / "build", host_build, build=False)
    assert run.configure.returncode == 0, run.explain()
    new_problems = set(compare_module_lists(usermods_copy, run.build_dir)) - baseline
    assert new_problems == {f"{folder.name}/extra_only_in_mk.c is compiled by the host build (micropython.mk) "
                            "but listed in no micropython.cmake"}, new_problems


def test_flag_only_in_micropython_mk_is_reported(usermods_copy: Path, host_build: Path, tmp_path: Path) -> None:
    baseline_run = run_harness(usermods_copy, tmp_path / "baseline", host_build, build=False)
    assert baseline_run.configure.returncode == 0, baseline_run.explain()
    baseline = set(compare_compile_flags(usermods_copy, baseline_run.build_dir))
    folder = module_dirs(usermods_copy)[0]
    with (folder / "micropython.mk").open("a") as mk:
        mk.write("\nCFLAGS_USERMOD += -DTINYSENSE_HARNESS_PROBE=1 -isystem $(USERMOD_DIR)\n")
    run = run_harness(usermods_copy, tmp_path / "build", host_build, build=False)
    assert run.configure.returncode == 0, run.explain()
    new_problems = set(compare_compile_flags(usermods_copy, run.build_dir)) - baseline
    assert new_problems == {
        "-D TINYSENSE_HARNESS_PROBE=1 is in a micropython.mk (CFLAGS_USERMOD) but in no micropython.cmake",
        f"-isystem {os.path.realpath(folder)} is in a micropython.mk (CFLAGS_USERMOD) but in no micropython.cmake",
    }, new_problems
