# CNN benchmark cases, for the models bench/cnn_size.py writes into bench/results/cnn/ first (meta.txt lists
# them). For every model NAME:
#   int8_NAME, float_NAME   emlearn_cnn on the int8 / float32 model file, one inference per call
#   call_int8, call_float   a 1x1x1 flatten-only model: the cost of the MicroPython call itself (subtracted for
#                           the per-layer figures)
#   python_NAME             networks only: the same float32 network as plain MicroPython loops over array('f')
#                           (what a user could write without emlearn_cnn), reading the same weights
# Extra modes (besides benchlib's CASE N):
#   bench_cnn.py --check CASE    one call, then the outputs' float32 bytes in hex
#   bench_cnn.py --memory CASE   heap held by the case's set-up (gc.mem_alloc() difference after gc.collect())
#   bench_cnn.py --memory-file CASE   heap held by emlearn_cnn.new(open(CASE.bin, "rb")) alone: the file's bytes
#                                     read into RAM, the model object with its layer table, and the arena
#   bench_cnn.py --memory-ram CASE    heap held by emlearn_cnn.new(memoryview(bytes already in RAM)), as a frozen
#                                     or memory-mapped model is used: the model object, layer table and arena
import array
import gc
import math
import sys

import emlearn_cnn
from benchlib import main

DIR = "../results/cnn/"
OUTPUTS = {}   # case -> the array('f') its calls write


def _read(name):
    with open(DIR + name, "rb") as f:
        return f.read()


def _meta():
    """name -> (has_peer, (h, w, c), in_scale, in_offset, [layer tuples])."""
    models = {}
    layers = None
    for line in _read("meta.txt").decode().split("\n"):
        words = line.split()
        if not words:
            continue
        if words[0] == "model":
            layers = []
            shape = (int(words[3]), int(words[4]), int(words[5]))
            models[words[1]] = (words[2] == "1", shape, float(words[6]), float(words[7]), layers)
        else:   # layer: type act kh kw sh sw pad_t pad_l out_h out_w out_c
            layers.append(tuple(int(v) for v in words[1:]))
    return models


MODELS = _meta()


def _emlearn(name, path):
    def setup():
        m = emlearn_cnn.new(_read(path))
        n_out = 1
        for d in m.output_dimensions():
            n_out *= d
        img, out = _read(name + "_img.bin"), array.array("f", bytes(4 * n_out))
        OUTPUTS[case] = out
        return lambda: m.run(img, out)

    case = path.replace(".bin", "")
    return setup


# ---- the plain-MicroPython peer: float32, H x W x C arrays, the device's weight layouts ----

def _act(v, act):
    if act and v < 0.0:
        return 0.0
    if act == 2 and v > 6.0:
        return 6.0
    return v


def _conv(x, ih, iw, ic, y, layer, w, wo, bo):
    _, act, kh, kw, sh, sw, pt, pl, oh, ow, oc = layer
    wsize = kh * kw * ic
    for oy in range(oh):
        y0 = oy * sh - pt
        for ox in range(ow):
            x0 = ox * sw - pl
            ybase = (oy * ow + ox) * oc
            for o in range(oc):
                acc = w[bo + o]
                wb = wo + o * wsize
                for ky in range(kh):
                    iy = y0 + ky
                    if 0 <= iy < ih:
                        for kx in range(kw):
                            ix = x0 + kx
                            if 0 <= ix < iw:
                                xb = (iy * iw + ix) * ic
                                wk = wb + (ky * kw + kx) * ic
                                for c in range(ic):
                                    acc += w[wk + c] * x[xb + c]
                y[ybase + o] = _act(acc, act)


def _depthwise(x, ih, iw, ic, y, layer, w, wo, bo):
    _, act, kh, kw, sh, sw, pt, pl, oh, ow, oc = layer
    for oy in range(oh):
        y0 = oy * sh - pt
        for ox in range(ow):
            x0 = ox * sw - pl
            ybase = (oy * ow + ox) * oc
            for c in range(oc):
                acc = w[bo + c]
                for ky in range(kh):
                    iy = y0 + ky
                    if 0 <= iy < ih:
                        for kx in range(kw):
                            ix = x0 + kx
                            if 0 <= ix < iw:
                                acc += w[wo + (ky * kw + kx) * oc + c] * x[(iy * iw + ix) * oc + c]
                y[ybase + c] = _act(acc, act)


def _pool(x, ih, iw, ic, y, layer):
    kind, act, kh, kw, sh, sw, pt, pl, oh, ow, oc = layer
    if kind == 5:   # global average pool
        kh, kw, sh, sw, pt, pl = ih, iw, 1, 1, 0, 0
    for oy in range(oh):
        y0 = oy * sh - pt
        for ox in range(ow):
            x0 = ox * sw - pl
            ybase = (oy * ow + ox) * oc
            for c in range(oc):
                acc = -math.inf if kind == 3 else 0.0
                count = 0
                for ky in range(kh):
                    iy = y0 + ky
                    if 0 <= iy < ih:
                        for kx in range(kw):
                            ix = x0 + kx
                            if 0 <= ix < iw:
                                v = x[(iy * iw + ix) * oc + c]
                                if kind == 3:
                                    acc = v if v > acc else acc
                                else:
                                    acc += v
                                count += 1
                y[ybase + c] = _act(acc if kind == 3 else acc / count, act)


def _dense(x, n, y, layer, w, wo, bo):
    act, oc = layer[1], layer[10]
    for o in range(oc):
        acc = w[bo + o]
        wb = wo + o * n
        for k in range(n):
            acc += w[wb + k] * x[k]
        y[o] = _act(acc, act)


def _python(name):
    def setup():
        _, (h, w, c), in_scale, in_offset, layers = MODELS[name]
        weights = array.array("f", _read(name + "_peer.bin"))
        x0 = array.array("f", [p * in_scale + in_offset for p in _read(name + "_img.bin")])
        plan = []   # (layer, input shape, output buffer, weight offset, bias offset), buffers made once
        pos = 0
        for layer in layers:
            kind, oh, ow, oc = layer[0], layer[8], layer[9], layer[10]
            n_w = {1: oc * layer[2] * layer[3] * c, 2: layer[2] * layer[3] * oc, 6: oc * h * w * c}.get(kind, 0)
            out = None if kind in (7, 8) else array.array("f", bytes(4 * oh * ow * oc))
            plan.append((layer, (h, w, c), out, pos, pos + n_w))
            pos += n_w + (oc if n_w else 0)
            h, w, c = oh, ow, oc

        def run():
            x = x0
            for layer, (ih, iw, ic), y, wo, bo in plan:
                kind = layer[0]
                if kind == 1:
                    _conv(x, ih, iw, ic, y, layer, weights, wo, bo)
                elif kind == 2:
                    _depthwise(x, ih, iw, ic, y, layer, weights, wo, bo)
                elif kind in (3, 4, 5):
                    _pool(x, ih, iw, ic, y, layer)
                elif kind == 6:
                    _dense(x, ih * iw * ic, y, layer, weights, wo, bo)
                elif kind == 8:
                    top = max(x)
                    total = 0.0
                    for i in range(len(x)):
                        x[i] = math.exp(x[i] - top)
                        total += x[i]
                    for i in range(len(x)):
                        x[i] /= total
                if y is not None:
                    x = y
            OUTPUTS[case] = x

        return run

    case = "python_" + name
    return setup


CASES = []
for _name, (_peer, _shape, _s, _o, _layers) in MODELS.items():
    if _peer:
        CASES.append(("python_" + _name, _python(_name)))
    CASES += [(_kind + "_" + _name, _emlearn(_name, _kind + "_" + _name + ".bin")) for _kind in ("float", "int8")]
CASES += [("call_float", _emlearn("call", "call_float.bin")), ("call_int8", _emlearn("call", "call_int8.bin"))]

if len(sys.argv) > 2 and sys.argv[1] == "--check":
    _fn = dict(CASES)[sys.argv[2]]()
    _fn()
    print(bytes(OUTPUTS[sys.argv[2]]).hex())   # exact float32 bits (a printed float may not round-trip)
elif len(sys.argv) > 2 and sys.argv[1] == "--memory":
    gc.collect()
    _before = gc.mem_alloc()
    _fn = dict(CASES)[sys.argv[2]]()
    gc.collect()
    print("heap_held", gc.mem_alloc() - _before)
elif len(sys.argv) > 2 and sys.argv[1] in ("--memory-file", "--memory-ram"):
    _mv = memoryview(_read(sys.argv[2] + ".bin")) if sys.argv[1] == "--memory-ram" else None
    gc.collect()
    _before = gc.mem_alloc()
    if _mv is None:
        with open(DIR + sys.argv[2] + ".bin", "rb") as _f:
            _m = emlearn_cnn.new(_f)
        _f = None
    else:
        _m = emlearn_cnn.new(_mv)
    gc.collect()
    print("heap_held", gc.mem_alloc() - _before)
else:
    main(CASES)
