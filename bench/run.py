"""Run the MicroPython-side benchmarks in the host firmware and write their tables to bench/results/.

Each bench/mp/bench_<name>.py defines cases (the C module and its peers: the same algorithm as a user would
write it in MicroPython) and follows bench/mp/benchlib.py's protocol. For every case this measures wall time per
call (noisy on shared machines: indicative only) and, when valgrind is installed, callgrind instructions per call
(stable: the figure to compare). Never fails on speed.

    python bench/run.py [NAME ...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tinysense.host import firmware_or_raise

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TIME_CALLS = 200
CALLGRIND_CALLS = 20  # calls counted per case (a script may ask for more: benchlib's callgrind_calls)
CALLGRIND_BASE_CALLS = 2


@dataclass
class CaseResult:
    case: str
    us_per_call: float
    instructions_per_call: float | None


def run_firmware(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=BENCH / "mp")
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc


def run_case(script: Path, case: str, calls: int) -> float:
    proc = run_firmware([str(firmware_or_raise()), str(script), case, str(calls)])
    return float(proc.stdout.split()[-1])


def callgrind_instructions(script: Path, case: str, calls: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        proc = run_firmware(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                             str(firmware_or_raise()), str(script), case, str(calls)])
        for line in proc.stderr.splitlines():
            if "Collected :" in line:
                return int(line.split()[-1])
    raise RuntimeError(f"callgrind printed no instruction count for {script.name} {case}")


def script_options(listing: list[str]) -> dict[str, float]:
    """The `key value` lines a script's `--list` prints after its case names (realtime_us, callgrind_calls)."""
    options = {}
    for line in listing[1:]:
        key, _, value = line.partition(" ")
        options[key] = float(value)
    return options


def bench_script(script: Path) -> tuple[list[CaseResult], float | None]:
    """The results of every case, and the real-time duration one call covers (if the script says)."""
    listing = run_firmware([str(firmware_or_raise()), str(script), "--list", "0"]).stdout.splitlines()
    options = script_options(listing)
    realtime_us = options.get("realtime_us")
    calls = int(options.get("callgrind_calls", CALLGRIND_CALLS))
    results = []
    have_valgrind = shutil.which("valgrind") is not None
    for case in listing[0].split():
        print(f"  {script.stem} {case}", file=sys.stderr, flush=True)
        us = run_case(script, case, TIME_CALLS)
        instructions = None
        if have_valgrind:
            # Two runs that differ only in the number of calls: start-up, set-up, the warm-up call, the
            # clock reads and the printed result cancel out (counting from N = 0 charged them to the calls).
            more = callgrind_instructions(script, case, CALLGRIND_BASE_CALLS + calls)
            base = callgrind_instructions(script, case, CALLGRIND_BASE_CALLS)
            instructions = (more - base) / calls
        results.append(CaseResult(case, us, instructions))
    return results, realtime_us


def size_suffix(case: str) -> str:
    """Cases named like `c_fft_256` belong to the size group `_256`; others to one group."""
    head, _, tail = case.rpartition("_")
    return f"_{tail}" if head and tail.isdigit() else ""


def markdown_table(name: str, results: list[CaseResult], realtime_us: float | None = None) -> str:
    # Each case is compared with the first case of its size group (the MicroPython peer comes first).
    baselines: dict[str, CaseResult] = {}
    for r in results:
        baselines.setdefault(size_suffix(r.case), r)
    realtime_note = f" One call processes {realtime_us / 1000:g} ms of signal." if realtime_us else ""
    peers = ", ".join(f"`{b.case}`" for b in baselines.values())
    lines = [
        f"# {name}",
        "",
        f"Host firmware (standard variant), same VM, same run. Speed-up is relative to {peers}"
        + (" (same size)" if len(baselines) > 1 else "") + "." + realtime_note
        + " Instructions per call: callgrind totals of two runs that differ only in the number of calls, "
        "their difference divided by it (start-up, set-up and timing cancel out).",
        "",
        "| case | instructions/call (callgrind) | speed-up (instructions) | µs/call (wall, noisy) |"
        + (" % of real time (host) |" if realtime_us else ""),
        "|---|---:|---:|---:|" + ("---:|" if realtime_us else ""),
    ]
    for r in results:
        baseline = baselines[size_suffix(r.case)]
        instr = f"{r.instructions_per_call:,.0f}" if r.instructions_per_call is not None else "n/a"
        if r.instructions_per_call and baseline.instructions_per_call:
            speedup = f"{baseline.instructions_per_call / r.instructions_per_call:.1f}×"
        else:
            speedup = "n/a"
        row = f"| {r.case} | {instr} | {speedup} | {r.us_per_call:.1f} |"
        if realtime_us:
            row += f" {100 * r.us_per_call / realtime_us:.3f} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all bench/mp/bench_*.py)")
    args = parser.parse_args(argv)
    scripts = sorted(BENCH.glob("mp/bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    RESULTS.mkdir(exist_ok=True)
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        if name == "trees":
            # Trees are compared with generated peer code, sizes and heap too: their own entry point
            # (writes trees.md and trees_size.md using this module's functions).
            subprocess.run([sys.executable, str(BENCH / "trees_size.py")], check=True)
            continue
        if name == "cnn":
            # CNN models are written and checked by the host first; per-MAC and size tables (writes cnn.md and
            # cnn_models.md).
            subprocess.run([sys.executable, str(BENCH / "cnn_size.py")], check=True)
            continue
        if name in ("neighbors", "net"):
            # k-NN and MLP train their models of several sizes first: their own entry point (writes <name>.md).
            subprocess.run([sys.executable, str(BENCH / "models_size.py"), name], check=True)
            continue
        results, realtime_us = bench_script(script)
        table = markdown_table(name, results, realtime_us)
        (RESULTS / f"{name}.md").write_text(table)
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
