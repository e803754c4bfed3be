"""The trees benchmark end to end: train and generate the peers, then write bench/results/trees.md (speed, as
bench/run.py writes it) and bench/results/trees_size.md (model storage, heap held after loading, speed ratios
against each peer, instructions per prediction by model size).

    python bench/trees_size.py [--no-speed] [--fuzz N]

--fuzz N (default 10000, 0 to skip) also runs tests/test_trees.py's loader fuzz test with N mutated model files
in the sanitize build (TINYSENSE_TREES_FUZZ=N; `make test` runs 300) and reports its time.

Speed runs every case of bench/mp/bench_trees.py through bench/run.py's own functions (wall time and
callgrind instructions per call); storage and heap come from bench/mp/trees_memory.py in the same firmware.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
import run  # noqa: E402

MEMORY_CASES = {
    "tinysense_bin": "ours, binary, soft vote ({bits} leaf probabilities, checked to give scikit-learn's predict)",
    "tinysense_class": "ours, binary, hard vote (class leaves, as everywhereml's code votes)",
    "tinysense_csv": "ours, CSV (class leaves)",
    "tinysense_soft_csv": "ours, CSV soft vote (emlearn's `lb,8` rows, 8-bit leaves checked like the binary's)",
    "m2cgen_mpy": "m2cgen (soft vote)",
    "everywhereml_mpy": "everywhereml (hard vote)",
}


def memory(case: str) -> tuple[int, int, int]:
    proc = run.run_firmware([str(run.firmware_or_raise()), "trees_memory.py", case])
    words = proc.stdout.split()
    return int(words[1]), int(words[3]), int(words[4])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×"


def size_table(prepared: peers.Prepared) -> list[str]:
    d = prepared.directory
    size = {name: (d / name).stat().st_size for name in
            ("tinysense_rf.bin", "tinysense_rf_class.bin", "tinysense_rf.csv", "tinysense_rf_soft.csv", "m2cgen_rf.py",
             "everywhereml_rf.py",
             "mpy/m2cgen_rf.mpy", "mpy/everywhereml_rf.mpy")}
    held = {case: memory(case) for case in MEMORY_CASES}
    lines = [
        "## Model storage and heap",
        "",
        f"digits, `RandomForestClassifier(n_estimators={peers.N_TREES}, max_leaf_nodes={peers.MAX_LEAVES})`: "
        f"{prepared.n_nodes} nodes, {prepared.n_leaves} leaves. Heap held = `gc.mem_alloc()` after loading minus "
        "before (after `gc.collect()`): `emlearn_trees.new()` with the model's capacity + `load_model()`, or "
        "importing the peer's .mpy (and, for everywhereml, creating its instance). Agreement = predictions equal "
        f"to scikit-learn's on the {prepared.n_test} held-out rows.",
        "",
        "| model | file | bytes | heap held (bytes) | agreement with scikit-learn |",
        "|---|---|---:|---:|---:|",
    ]
    rows = [("tinysense_bin", "tinysense_rf.bin"), ("tinysense_class", "tinysense_rf_class.bin"),
            ("tinysense_csv", "tinysense_rf.csv"), ("tinysense_soft_csv", "tinysense_rf_soft.csv"),
            ("m2cgen_mpy", "mpy/m2cgen_rf.mpy"),
            ("everywhereml_mpy", "mpy/everywhereml_rf.mpy")]
    leaf_bits = (d / "tinysense_rf.bin").read_bytes()[6]
    bits = {8: "8-bit", 16: "16-bit", 32: "float32"}.get(leaf_bits, f"{leaf_bits}-bit")
    for case, name in rows:
        h, agree, n = held[case]
        lines.append(f"| {MEMORY_CASES[case].format(bits=bits)} | `{name}` | {size[name]:,} | {h:,} | {agree}/{n} |")
    lines += [f"| m2cgen source | `m2cgen_rf.py` | {size['m2cgen_rf.py']:,} | | |",
              f"| everywhereml source | `everywhereml_rf.py` | {size['everywhereml_rf.py']:,} | | |", ""]
    ours = {"soft": ("tinysense_rf.bin", "tinysense_bin"), "hard": ("tinysense_rf_class.bin", "tinysense_class")}
    lines += ["| ratio (peer ÷ ours) | ours soft vote | ours hard vote | target |", "|---|---:|---:|---:|"]
    for peer, label in (("m2cgen", "m2cgen"), ("everywhereml", "everywhereml")):
        lines.append(f"| {label} .py source ÷ our file | " + " | ".join(
            ratio(size[f"{peer}_rf.py"], size[ours[k][0]]) for k in ("soft", "hard")) + " | ≥ 10× |")
        lines.append(f"| {label} .mpy ÷ our file | " + " | ".join(
            ratio(size[f"mpy/{peer}_rf.mpy"], size[ours[k][0]]) for k in ("soft", "hard")) + " | ≥ 2× |")
        lines.append(f"| {label} heap ÷ our heap | " + " | ".join(
            ratio(held[f"{peer}_mpy"][0], held[ours[k][1]][0]) for k in ("soft", "hard")) + " | ≥ 2× |")
    return lines + [""]


def speed_tables() -> list[str]:
    results, realtime_us = run.bench_script(BENCH / "mp" / "bench_trees.py")
    (run.RESULTS / "trees.md").write_text(run.markdown_table("trees", results, realtime_us))
    by_case = {r.case: r for r in results}
    ours, loop = by_case["tinysense_trees"], by_case["loop_only"]
    lines = ["## Speed per prediction (one prediction per call, same VM, same run)", "",
             "Every case predicts each of the held-out rows once, through the same loop (benchlib: `for i in "
             "range(n): fn(rows[i])`). Raw = instructions per benchmark call; net = minus `loop_only` (the same "
             "loop with a no-op builtin instead of predict: "
             + (f"{loop.instructions_per_call:,.0f}" if loop.instructions_per_call else "n/a")
             + " instructions/call), i.e. the prediction alone.", "",
             "| peer | peer instr./call | ours | speed-up raw | speed-up net | speed-up (wall, noisy) | target |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for peer, target in (("m2cgen_py", "≥ 50×"), ("everywhereml_py", "≥ 20×")):
        r = by_case[peer]
        if r.instructions_per_call and ours.instructions_per_call and loop.instructions_per_call:
            net = ratio(r.instructions_per_call - loop.instructions_per_call,
                        ours.instructions_per_call - loop.instructions_per_call)
            instr = (f"{r.instructions_per_call:,.0f} | {ours.instructions_per_call:,.0f} | "
                     f"{ratio(r.instructions_per_call, ours.instructions_per_call)} | {net}")
        else:
            instr = "n/a | n/a | n/a | n/a"
        lines.append(f"| {peer} | {instr} | {ratio(r.us_per_call, ours.us_per_call)} | {target} |")
    lines += ["", "## emlearn_trees instructions per prediction by model size", "",
              "digits, `RandomForestClassifier(n_estimators=T, max_leaf_nodes=L)`, binary model, int16 input "
              "(includes the MicroPython call and the benchmark loop; every held-out row once).", "",
              "| T trees | L max leaves/tree | model bytes | instructions/prediction (callgrind) |",
              "|---:|---:|---:|---:|"]
    for r in run.bench_script(BENCH / "mp" / "trees_sizes.py")[0]:
        t, leaves = r.case[1:].split("_l")
        size = (peers.OUT / f"size_{r.case}.bin").stat().st_size
        instr = f"{r.instructions_per_call:,.0f}" if r.instructions_per_call else "n/a"
        lines.append(f"| {t} | {leaves} | {size:,} | {instr} |")
    if shutil.which("valgrind") is None:
        lines += ["", "valgrind is not installed: no instruction counts."]
    return lines + [""]


def fuzz_section(n: int) -> list[str]:
    env = dict(os.environ, TINYSENSE_TREES_FUZZ=str(n))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_trees.py",
                           "-k", "fuzz"], capture_output=True, text=True, cwd=BENCH.parent, env=env)
    seconds = time.monotonic() - start
    outcome = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]
    return ["## Loader fuzz (sanitize build)", "",
            f"`TINYSENSE_TREES_FUZZ={n} pytest tests/test_trees.py -k fuzz`: {outcome} — {seconds:.1f} s "
            f"({'passed' if proc.returncode == 0 else 'FAILED'}).", ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-speed", action="store_true", help="only storage and heap (skips callgrind)")
    parser.add_argument("--fuzz", type=int, default=10000, help="mutated model files for the loader fuzz (0: skip)")
    args = parser.parse_args(argv)
    prepared = peers.prepare()
    lines = ["# trees: size, heap and speed against m2cgen and everywhereml", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in prepared.versions.items()) + f". {peers.ADAPTATIONS}.",
             ""]
    lines += size_table(prepared)
    if not args.no_speed:
        lines += speed_tables()
    if args.fuzz:
        lines += fuzz_section(args.fuzz)
    run.RESULTS.mkdir(exist_ok=True)
    text = "\n".join(lines)
    (run.RESULTS / "trees_size.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
