"""The CNN benchmark end to end: write the models, check them, measure them, and write bench/results/cnn.md
(instructions per MAC per layer type and per network, speed-up over plain MicroPython) and
bench/results/cnn_models.md (flash, RAM and MACs per model next to TinyMaix's published figures).

    python bench/cnn_size.py [--no-speed]      (bench/run.py calls it for the name `cnn`)

Models (random He-initialised weights, seeded, converted with tinysense.cnn; int8 calibrated on random images):
single layers on their own (conv2d 3x3 and 5x5, a first-layer 3x3 conv on one channel, depthwise, dense, pools)
and four networks: `digits` (8x8x1, the shape of the trained digits model), `mnist` (28x28x1: conv 3x3x4 ->
maxpool -> conv 3x3x8 -> maxpool -> dense 10), `mnist_tinymaix` (TinyMaix's mnist example network: three valid
stride-2 3x3 convolutions 4 -> 8 -> 16, global average pool, dense 10, softmax) and `cifar32` (32x32x3 with
depthwise, 1x1, 3x3 and 5x5 convolutions). Before anything is measured, each model's outputs on the benchmark
image are checked: int8 bit for bit against tinysense.cnn.reference, float32 and the plain-MicroPython peer within
1e-4 of the NumPy float reference.

MACs count the multiply-accumulates the engine performs (padding positions are skipped, not counted); for pools,
the window elements read. Per-layer "net" instructions subtract the MicroPython call alone (a 1x1x1 flatten-only
model); the uint8 input conversion and the output copy stay in the figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import run  # noqa: E402

from tinysense import cnn  # noqa: E402
from tinysense.cnn import model as fmt  # noqa: E402
from tinysense.cnn.model import Layer, Model  # noqa: E402
from tinysense.host import HostFirmwareMissing  # noqa: E402

OUT = run.RESULTS / "cnn"
SCRIPT = BENCH / "mp" / "bench_cnn.py"
C_CALLS = 20
C_BASE_CALLS = getattr(run, "CALLGRIND_BASE_CALLS", 2)
# TinyMaix's published figures (README.md and benchmark.md of github.com/sipeed/TinyMaix): its mnist example,
# int8, three valid stride-2 3x3 convolutions 4 -> 8 -> 16, global average pool, dense 10, softmax.
TINYMAIX = {"mnist_tinymaix": (2408, 1464)}
TINYMAIX_SOURCE = ("TinyMaix README.md (tflite2tmdl.py output for examples/mnist: \"model size 2.4KB (2408 B) FLASH, "
                   "buffer size 1.4KB (1464 B) RAM\") and benchmark.md (\"mnist_q_valid.h 2.4KB Flash 1.4KB RAM\"; "
                   "ESP32-S3 at 240 MHz, model in flash: mnist 5 ms, cifar 86 ms), github.com/sipeed/TinyMaix")


class Net:
    """Builds a float32 Model layer by layer (shapes tracked, He-initialised weights)."""

    def __init__(self, rng: np.random.Generator, shape: tuple[int, int, int]) -> None:
        self.rng, self.shape, self.input_shape, self.layers = rng, shape, shape, []

    def _window(self, kind: int, k: int, s: int, p: int, co: int, act: int = fmt.ACT_NONE) -> None:
        h, w, c = self.shape
        h, w = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        weights = bias = None
        if kind == fmt.CONV2D:
            weights = self.rng.normal(0, np.sqrt(2 / (k * k * c)), (co, k, k, c))
        elif kind == fmt.DEPTHWISE:
            co, weights = c, self.rng.normal(0, np.sqrt(2 / (k * k)), (k, k, c))
        else:
            co = c
        if weights is not None:
            weights, bias = weights.astype(np.float32), self.rng.normal(0, 0.05, co).astype(np.float32)
        self.layers.append(Layer(kind, (h, w, co), act, (k, k), (s, s), (p, p), weights, bias))
        self.shape = (h, w, co)

    def conv(self, k: int, co: int, s: int = 1, p: int | None = None, act: int = fmt.ACT_RELU) -> Net:
        self._window(fmt.CONV2D, k, s, k // 2 if p is None else p, co, act)
        return self

    def depthwise(self, k: int, s: int = 1, act: int = fmt.ACT_RELU6) -> Net:
        self._window(fmt.DEPTHWISE, k, s, k // 2, 0, act)
        return self

    def pool(self, kind: int = fmt.MAXPOOL, k: int = 2) -> Net:
        self._window(kind, k, k, 0, 0)
        return self

    def gap(self) -> Net:
        self.shape = (1, 1, self.shape[2])
        self.layers.append(Layer(fmt.GLOBAL_AVGPOOL, self.shape))
        return self

    def dense(self, n: int, act: int = fmt.ACT_NONE) -> Net:
        n_in = int(np.prod(self.shape))
        if self.shape[:2] != (1, 1):
            self.layers.append(Layer(fmt.FLATTEN, (1, 1, n_in)))
        weights = self.rng.normal(0, np.sqrt(2 / n_in), (n, n_in)).astype(np.float32)
        self.layers.append(Layer(fmt.DENSE, (1, 1, n), act, weights=weights,
                                 bias=self.rng.normal(0, 0.05, n).astype(np.float32)))
        self.shape = (1, 1, n)
        return self

    def softmax(self) -> Net:
        self.layers.append(Layer(fmt.SOFTMAX, self.shape))
        return self

    def model(self) -> Model:
        return Model(fmt.FLOAT32, self.input_shape, self.layers)


# name -> (what the table says, builder); layers first, then networks (which get a plain-MicroPython peer)
LAYERS: dict[str, tuple[str, Callable[[Net], Net]]] = {
    "conv3x3": ("conv2d 3×3, 16×16×16 → 16, same", lambda n: n.conv(3, 16)),
    "conv3x3_c1": ("conv2d 3×3, 28×28×1 → 8, same (a first layer)", lambda n: n.conv(3, 8)),
    "conv5x5": ("conv2d 5×5, 16×16×16 → 16, same", lambda n: n.conv(5, 16)),
    "depthwise3x3": ("depthwise 3×3, 16×16×48, same", lambda n: n.depthwise(3)),
    "dense": ("dense 512 → 128", lambda n: n.dense(128)),
    "maxpool2x2": ("maxpool 2×2, 32×32×16", lambda n: n.pool(fmt.MAXPOOL)),
    "avgpool2x2": ("avgpool 2×2, 32×32×16", lambda n: n.pool(fmt.AVGPOOL)),
    "global_avgpool": ("global average pool, 16×16×32", lambda n: n.gap()),
}
LAYER_INPUTS = {"conv3x3": (16, 16, 16), "conv3x3_c1": (28, 28, 1), "conv5x5": (16, 16, 16),
                "depthwise3x3": (16, 16, 48), "dense": (1, 1, 512), "maxpool2x2": (32, 32, 16),
                "avgpool2x2": (32, 32, 16), "global_avgpool": (16, 16, 32)}
NETWORKS: dict[str, tuple[str, tuple[int, int, int], Callable[[Net], Net]]] = {
    "digits": ("8×8×1: conv 3×3×8 same → maxpool → dense 10", (8, 8, 1),
               lambda n: n.conv(3, 8).pool().dense(10)),
    "mnist": ("28×28×1: conv 3×3×4 → maxpool → conv 3×3×8 → maxpool → dense 10", (28, 28, 1),
              lambda n: n.conv(3, 4).pool().conv(3, 8).pool().dense(10)),
    "mnist_tinymaix": ("28×28×1, TinyMaix's mnist: conv 3×3 s2 valid 4 → 8 → 16 → GAP → dense 10 → softmax",
                       (28, 28, 1), lambda n: n.conv(3, 4, 2, 0).conv(3, 8, 2, 0).conv(3, 16, 2, 0).gap()
                       .dense(10).softmax()),
    "cifar32": ("32×32×3: conv 5×5×16 → maxpool → depthwise 3×3 → conv 1×1×32 → maxpool → conv 3×3×32 → "
                "GAP → dense 10 → softmax", (32, 32, 3),
                lambda n: n.conv(5, 16).pool().depthwise(3).conv(1, 32).pool().conv(3, 32).gap().dense(10)
                .softmax()),
}
PEER_CALLS = {"digits": 5, "mnist": 1, "mnist_tinymaix": 2, "cifar32": 1}   # callgrind calls (+1 warm-up)


@dataclass
class Prepared:
    name: str
    label: str
    network: bool
    float_model: Model
    int8_model: Model
    image: np.ndarray
    macs: int


def _valid(size: int, out: int, k: int, s: int, p: int) -> int:
    """Kernel positions inside the input, summed over the output positions of one axis."""
    return sum(min(k, size - (o * s - p)) - max(0, p - o * s) for o in range(out))


def macs(model: Model) -> int:
    """Multiply-accumulates performed (padding skipped); pools: window elements read."""
    total = 0
    for i, layer in enumerate(model.layers):
        ih, iw, ic = model.tensor_shape(model.source(i))
        oh, ow, oc = layer.out_shape
        (kh, kw), (sh, sw), (pt, pl) = layer.kernel, layer.stride, layer.pad
        if layer.type in (fmt.CONV2D, fmt.DEPTHWISE, fmt.MAXPOOL, fmt.AVGPOOL):
            per = ic * oc if layer.type == fmt.CONV2D else oc
            total += _valid(ih, oh, kh, sh, pt) * _valid(iw, ow, kw, sw, pl) * per
        elif layer.type == fmt.GLOBAL_AVGPOOL:
            total += ih * iw * ic
        elif layer.type == fmt.DENSE:
            total += ih * iw * ic * oc
    return total


def _layer_line(layer: Layer) -> str:
    return "layer " + " ".join(map(str, (layer.type, layer.act, *layer.kernel, *layer.stride, *layer.pad,
                                         *layer.out_shape)))


def prepare() -> list[Prepared]:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(8)
    specs = [(name, label, LAYER_INPUTS[name], build, False) for name, (label, build) in LAYERS.items()]
    specs += [(name, label, shape, build, True) for name, (label, shape, build) in NETWORKS.items()]
    meta, prepared = [], []
    for name, label, shape, build, network in specs:
        float_model = build(Net(rng, shape)).model()
        calibration = rng.integers(0, 256, (16, *shape), dtype=np.uint8)
        int8_model = cnn.quantize(float_model, calibration)
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        (OUT / f"float_{name}.bin").write_bytes(cnn.write(float_model))
        (OUT / f"int8_{name}.bin").write_bytes(cnn.write(int8_model))
        (OUT / f"{name}_img.bin").write_bytes(image.tobytes())
        peer = [np.concatenate([layer.weights.ravel(), layer.bias]) for layer in float_model.layers
                if layer.type in fmt.WEIGHTED and layer.weights is not None and layer.bias is not None]
        (OUT / f"{name}_peer.bin").write_bytes(np.concatenate(peer).astype("<f4").tobytes() if peer else b"")
        meta.append(f"model {name} {int(network)} {' '.join(map(str, shape))} {float_model.in_scale!r} "
                    f"{float_model.in_offset!r}")
        meta += [_layer_line(layer) for layer in float_model.layers]
        prepared.append(Prepared(name, label, network, float_model, int8_model, image, macs(float_model)))
    (OUT / "meta.txt").write_text("\n".join(meta) + "\n")
    # The call alone: a 1x1x1 image through a flatten-only model.
    flat = [Layer(fmt.FLATTEN, (1, 1, 1))]
    (OUT / "call_float.bin").write_bytes(cnn.write(Model(fmt.FLOAT32, (1, 1, 1), flat)))
    (OUT / "call_int8.bin").write_bytes(cnn.write(Model(fmt.INT8, (1, 1, 1), flat)))
    (OUT / "call_img.bin").write_bytes(bytes(1))
    return prepared


def device_outputs(case: str) -> np.ndarray:
    proc = run.run_firmware([str(run.firmware_or_raise()), str(SCRIPT), "--check", case])
    return np.frombuffer(bytes.fromhex(proc.stdout.split()[-1]), dtype="<f4")


def check(p: Prepared) -> list[str]:
    """The models' outputs on the benchmark image against the NumPy references; raises on a difference."""
    image = p.image[None]
    expected_int8 = cnn.reference.run_int8(p.int8_model, image)[0]
    got = device_outputs(f"int8_{p.name}")
    exact = p.int8_model.layers[-1].type != fmt.SOFTMAX
    if exact and not np.array_equal(got.view(np.uint32), expected_int8.astype(np.float32).view(np.uint32)):
        raise AssertionError(f"{p.name}: int8 outputs differ from the NumPy integer reference")
    if not np.allclose(got, expected_int8, atol=1e-6, rtol=0):   # softmax: expf vs numpy's exp
        raise AssertionError(f"{p.name}: int8 softmax outputs differ from the reference")
    expected = cnn.reference.run_float(p.float_model, image)[0]
    cases = [f"float_{p.name}"] + ([f"python_{p.name}"] if p.network else [])
    for case in cases:
        got = device_outputs(case)
        tol = 1e-4 * max(1.0, float(np.abs(expected).max()))
        if got.shape != expected.shape or np.abs(got - expected).max() > tol:
            raise AssertionError(f"{case}: outputs differ from the NumPy float reference by "
                                 f"{np.abs(got - expected).max() if got.shape == expected.shape else got.shape}")
    return [f"int8_{p.name}", *cases]


@dataclass
class Measured:
    instructions: float | None
    us: float


def measure(case: str, calls: int, base_calls: int, have_valgrind: bool) -> Measured:
    """Wall time per call, and callgrind instructions per call from two runs that differ only in the number of
    calls (start-up and set-up cancel out). benchlib adds one warm-up call when it calls at all: with
    base_calls = 0 (the slow peers, to spare a run) it is in the difference and counted as a call."""
    print(f"  cnn {case}", file=sys.stderr, flush=True)
    us = run.run_case(SCRIPT, case, calls)
    instructions = None
    if have_valgrind:
        more = run.callgrind_instructions(SCRIPT, case, base_calls + calls)
        base = run.callgrind_instructions(SCRIPT, case, base_calls)
        instructions = (more - base) / (calls + (1 if base_calls == 0 else 0))
    return Measured(instructions, us)


def heap_held(case: str, mode: str = "--memory", variant: str = "standard") -> str:
    """gc.mem_alloc() held after a case's set-up (bench_cnn.py's --memory modes), formatted; "n/a" when the
    variant's firmware is not built (the 32-bit one is optional: `make -C ports/host VARIANT=32`)."""
    try:
        firmware = run.firmware_or_raise(variant)
    except HostFirmwareMissing:
        if variant == "standard":
            raise
        return "n/a"
    proc = run.run_firmware([str(firmware), str(SCRIPT), mode, case])
    return f"{int(proc.stdout.split()[-1]):,}"


def _f(v: float | None, digits: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:,.0f}×" if a and b else "n/a"


def speed_tables(prepared: list[Prepared]) -> list[str]:
    have_valgrind = shutil.which("valgrind") is not None
    m = {case: measure(case, C_CALLS, C_BASE_CALLS, have_valgrind) for case in ("call_int8", "call_float")}
    for p in prepared:
        kinds = ["int8", "float"] + (["python"] if p.network else [])
        for kind in kinds:
            if kind == "python":
                m[f"{kind}_{p.name}"] = measure(f"{kind}_{p.name}", PEER_CALLS[p.name], 0, have_valgrind)
            else:
                m[f"{kind}_{p.name}"] = measure(f"{kind}_{p.name}", C_CALLS, C_BASE_CALLS, have_valgrind)

    def per_mac(case: str, base: str | None, n: int) -> str:
        a = m[case].instructions
        if a is None:
            return "n/a"
        return f"{(a - (m[base].instructions or 0.0) if base else a) / n:.2f}"

    lines = ["# cnn: instructions per MAC and speed against plain MicroPython", "",
             "Host firmware (standard variant, x86-64, gcc -O2), callgrind instructions per inference (one "
             "`Model.run` call). MACs = multiply-accumulates performed (padding skipped); pools: window elements "
             "read. Net = minus the MicroPython call itself (a 1×1×1 flatten-only model: "
             + "/".join(_f(m[c].instructions) for c in ("call_int8", "call_float")) + " instructions int8/float32); "
             "the layer's input conversion and output copy stay in. Wall times are noisy (shared machine).", "",
             "## Per layer type", "",
             "| layer | MACs | int8 instr./call | int8 net instr./MAC | float32 net instr./MAC | "
             "int8 µs/call (wall) | float32 µs/call (wall) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for p in prepared:
        if p.network:
            continue
        lines.append(f"| {p.label} | {p.macs:,} | {_f(m['int8_' + p.name].instructions)} | "
                     f"{per_mac('int8_' + p.name, 'call_int8', p.macs)} | "
                     f"{per_mac('float_' + p.name, 'call_float', p.macs)} | {m['int8_' + p.name].us:.1f} | "
                     f"{m['float_' + p.name].us:.1f} |")
    lines += ["", "Goal (issue #8): ≤ 1.5 instructions/MAC for int8 3×3 conv2d on the host.", "",
              "## Networks: emlearn_cnn against the same network in plain MicroPython (same VM, same run)", "",
              "The peer is float32 Python loops over `array('f')` weights in the device's layouts, buffers made "
              "once (bench/mp/bench_cnn.py); its outputs are checked against the NumPy float reference.", "",
              "| network | MACs | plain MicroPython instr./call | float32 instr./call | int8 instr./call | "
              "speed-up float32 | speed-up int8 | int8 instr./MAC | µs/call peer / float32 / int8 (wall) |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in prepared:
        if not p.network:
            continue
        py, fl, q = m["python_" + p.name], m["float_" + p.name], m["int8_" + p.name]
        lines.append(f"| {p.name}: {p.label} | {p.macs:,} | {_f(py.instructions)} | {_f(fl.instructions)} | "
                     f"{_f(q.instructions)} | {_ratio(py.instructions, fl.instructions)} | "
                     f"{_ratio(py.instructions, q.instructions)} | {per_mac('int8_' + p.name, None, p.macs)} | "
                     f"{py.us:,.0f} / {fl.us:,.1f} / {q.us:,.1f} |")
    lines += ["", "Goal (issue #8): ≥ 200× faster than the plain-MicroPython peer."]
    if not have_valgrind:
        lines += ["", "valgrind is not installed: no instruction counts."]
    return lines + [""]


def size_table(prepared: list[Prepared]) -> list[str]:
    lines = ["# cnn models: flash, RAM and MACs", "",
             "Flash = the model file (weights read in place: a file in a memory-mapped partition or frozen "
             "bytes needs no RAM for them). RAM = the activation arena (`arena_size()`, planned at conversion). "
             "Heap held = `gc.mem_alloc()` after `emlearn_cnn.new(...)` minus before, after `gc.collect()` "
             "(bench/mp/bench_cnn.py --memory-ram / --memory-file): *in RAM* = `new(memoryview(data))` on model "
             "bytes already in memory (how a frozen or memory-mapped model is used): the model object with its "
             "layer table (40 B per layer) and the arena, on the 64-bit and the 32-bit (like the ESP32-S3) host "
             "builds; *from a file* = `new(open(path, 'rb'))`, which reads the file into a bytes object: the model "
             "bytes count. The plain-MicroPython peer (64-bit) holds its float32 weights, layer buffers, image "
             "and output.", "",
             "| model | MACs | int8 file (flash) B | int8 arena (RAM) B | int8 heap held in RAM 64 / 32-bit B | "
             "int8 heap held from a file B | float32 file B | float32 arena B | float32 heap held in RAM "
             "64 / 32-bit B | peer heap held B | TinyMaix flash / RAM B |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for p in prepared:
        if not p.network:
            continue
        tm = TINYMAIX.get(p.name)
        q, f = f"int8_{p.name}", f"float_{p.name}"
        lines.append(f"| {p.name} | {p.macs:,} | {(OUT / f'{q}.bin').stat().st_size:,} | "
                     f"{cnn.arena_size(p.int8_model):,} | {heap_held(q, '--memory-ram')} / "
                     f"{heap_held(q, '--memory-ram', '32')} | {heap_held(q, '--memory-file')} | "
                     f"{(OUT / f'{f}.bin').stat().st_size:,} | {cnn.arena_size(p.float_model):,} | "
                     f"{heap_held(f, '--memory-ram')} / {heap_held(f, '--memory-ram', '32')} | "
                     f"{heap_held('python_' + p.name)} | " + (f"{tm[0]:,} / {tm[1]:,}" if tm else "—") + " |")
    lines += ["", "Networks:", ""] + [f"- `{p.name}`: {p.label}" for p in prepared if p.network]
    lines += ["", f"TinyMaix figures: {TINYMAIX_SOURCE}. `mnist_tinymaix` is the same layer structure "
              "(random weights here; sizes do not depend on the values).", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-speed", action="store_true", help="only check the models and write the size table")
    args = parser.parse_args(argv)
    prepared = prepare()
    checked = [case for p in prepared for case in check(p)]
    print(f"checked {len(checked)} cases against the NumPy references", file=sys.stderr)
    sizes = size_table(prepared)
    (run.RESULTS / "cnn_models.md").write_text("\n".join(sizes))
    print("\n".join(sizes))
    if not args.no_speed:
        speed = speed_tables(prepared)
        (run.RESULTS / "cnn.md").write_text("\n".join(speed))
        print("\n".join(speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
