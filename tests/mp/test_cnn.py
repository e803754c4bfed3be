# emlearn_cnn on the device side: small models written here by hand, outputs computed in plain Python;
# the binding's API (emlearn-micropython's new / run / output_dimensions, plus input_shape / arena_size),
# zero-copy buffers, model file validation and bad input.
import array
import struct

import emlearn_cnn
from mptest import crc32, heap_allocated_during, raises, requires_gc

CONV2D, DEPTHWISE, MAXPOOL, AVGPOOL, GAP, DENSE, FLATTEN, SOFTMAX, ADD = 1, 2, 3, 4, 5, 6, 7, 8, 9
NONE, RELU, RELU6 = 0, 1, 2


def align(n, a=16):
    return (n + a - 1) // a * a


def cnn_file(in_shape, layers, dtype=1, in_scale=1.0, out_scale=1.0, out_zp=0, arena=None, version=1, n_slots=0):
    # layers: (type, act, k, stride, pad, out_shape, params bytes, (in_zp, out_zp, act_min, act_max)[, (src, src2,
    # out_slot)]): version 1 files are chains (no graph field); version 2 has it and n_slots
    first = 48 + 32 * len(layers)
    table = b""
    blobs = b""
    sizes = [in_shape[0] * in_shape[1] * in_shape[2]]
    for kind, act, k, s, p, out, params, q, *graph in layers:
        graph = graph[0] if graph else (0, 0, 0)
        where = 0
        if params:
            pad = align(first + len(blobs)) - first - len(blobs)
            blobs += bytes(pad)
            where = first + len(blobs)
            blobs += params
        table += struct.pack("<BBBBBBBBHHHHIIbbbbI", kind, act, k, k, s, s, p, p, out[0], out[1], out[2], 0, where,
                             len(params), q[0], q[1], q[2], q[3], graph[0] | graph[1] << 8 | graph[2] << 16)
        sizes.append(out[0] * out[1] * out[2])
    body = table + blobs
    body += bytes((-(48 + len(body))) % 4)
    if arena is None:
        arena = (n_slots or 2) * max(align(n * (4 if dtype == 1 else 1)) for n in sizes)
    rest = struct.pack("<IIHHHHfffiI", 48 + len(body), arena, in_shape[0], in_shape[1], in_shape[2], n_slots, in_scale,
                       0.0, out_scale, out_zp, 0)
    head = struct.pack("<4sBBBB", b"TSCN", version, dtype, len(layers), 0)
    return head + struct.pack("<I", crc32(rest + body, crc32(head))) + rest + body


def floats(*values):
    return struct.pack("<%df" % len(values), *values)


NOQ = (0, 0, 0, 0)
# 3x3x1 image -> conv 2x2 valid (weights 1, -1, 0.5, 0; bias 0.25; relu) -> 2x2x1 -> flatten -> dense 4 -> 2
CONV_W = (1.0, -1.0, 0.5, 0.0)
DENSE_W = ((1.0, 0.0, 0.0, 0.0), (0.0, 1.0, 1.0, -1.0))
FLOAT_MODEL = cnn_file((3, 3, 1), [
    (CONV2D, RELU, 2, 1, 0, (2, 2, 1), floats(*CONV_W) + floats(0.25), NOQ),
    (FLATTEN, NONE, 0, 0, 0, (1, 1, 4), b"", NOQ),
    (DENSE, NONE, 0, 0, 0, (1, 1, 2), floats(*DENSE_W[0]) + floats(*DENSE_W[1]) + floats(0.0, 1.0), NOQ),
], in_scale=1.0)


def expected_float(img):
    conv = []
    for y in range(2):
        for x in range(2):
            v = 0.25
            for ky in range(2):
                for kx in range(2):
                    v += CONV_W[ky * 2 + kx] * img[(y + ky) * 3 + x + kx]
            conv.append(max(0.0, v))
    return [sum(w * c for w, c in zip(DENSE_W[0], conv)), sum(w * c for w, c in zip(DENSE_W[1], conv)) + 1.0]


# int8: 2x2x2 image -> maxpool 2x2 -> 1x1x2 -> dense 2 -> 2 (weights q, bias, M = 2^30, s = 31: x0.5) -> relu
INT8_MODEL = cnn_file((2, 2, 2), [
    (MAXPOOL, NONE, 2, 2, 0, (1, 1, 2), b"", (-128, -128, -128, 127)),
    (DENSE, RELU, 0, 0, 0, (1, 1, 2), bytes([1, 0, 0xFF, 2]) + struct.pack("<6i", 10, -3, 1 << 30, 1 << 30, 31, 31),
     (-128, -5, -5, 127)),
], dtype=2, out_scale=0.5, out_zp=-5)


def expected_int8(img):
    q = [max(img[c], img[2 + c], img[4 + c], img[6 + c]) - 128 for c in range(2)]
    acc = [1 * (q[0] + 128) + 10, -1 * (q[0] + 128) + 2 * (q[1] + 128) - 3]
    out = []
    for a in acc:
        v = ((a * (1 << 30) + (1 << 30)) >> 31) - 5
        out.append((min(127, max(-5, v)) + 5) * 0.5)
    return out


def test_float_model_by_hand():
    m = emlearn_cnn.new(FLOAT_MODEL)
    assert m.input_shape() == (3, 3, 1) and m.output_dimensions() == (2,) and not m.is_int8()
    assert m.arena_size() == 2 * 48  # the 3x3x1 float32 input (36 bytes) rounded to 16, twice
    out = array.array("f", [0, 0])
    for img in (bytes(range(9)), bytes([255, 0, 7, 9, 200, 1, 3, 3, 90]), bytes(9), bytes([255]) * 9):
        m.run(img, out)
        want = expected_float(img)
        assert all(abs(a - b) <= 1e-4 * max(1.0, abs(b)) for a, b in zip(out, want)), (list(out), want)


def test_int8_model_by_hand():
    m = emlearn_cnn.new(INT8_MODEL)
    assert m.is_int8() and m.input_shape() == (2, 2, 2) and m.output_dimensions() == (2,)
    out = array.array("f", [0, 0])
    for img in (bytes(8), bytes([255]) * 8, bytes([1, 200, 3, 4, 90, 6, 7, 8]), bytes([130, 120, 0, 0, 0, 0, 0, 0])):
        m.run(array.array("B", img), out)
        assert list(out) == expected_int8(img), (list(out), expected_int8(img))


def test_zero_copy_buffers_stay_alive():
    requires_gc()
    import gc

    m = emlearn_cnn.new(memoryview(bytearray(FLOAT_MODEL)))   # the only reference to the bytearray is the model's
    gc.collect()
    for _ in range(20):
        bytearray(len(FLOAT_MODEL))   # would overwrite a freed buffer
    out = array.array("f", [0, 0])
    img = bytes(range(9))
    m.run(img, out)
    assert abs(out[1] - expected_float(img)[1]) < 1e-4


def test_bytearray_resized_after_new_raises():
    buf = bytearray(FLOAT_MODEL)
    m = emlearn_cnn.new(buf)
    buf.extend(bytes(1000))
    with raises(ValueError, "resized"):
        m.run(bytes(9), array.array("f", [0, 0]))


def test_run_allocates_nothing():
    m = emlearn_cnn.new(FLOAT_MODEL)
    q = emlearn_cnn.new(INT8_MODEL)
    img, img8, out = bytes(range(9)), bytearray(8), array.array("f", [0, 0])
    assert heap_allocated_during(lambda: m.run(img, out), 200) == 0
    assert heap_allocated_during(lambda: q.run(img8, out), 200) == 0


def test_bad_run_arguments():
    m = emlearn_cnn.new(FLOAT_MODEL)
    out = array.array("f", [0, 0])
    with raises(ValueError, "img has 8 values, the model takes 3x3x1 = 9"):
        m.run(bytes(8), out)
    with raises(ValueError, "typecode 'f'"):
        m.run(array.array("f", range(9)), out)
    with raises(TypeError, "img must be uint8"):
        m.run(9, out)
    with raises(ValueError, "out has 1 values, the model has 2 outputs"):
        m.run(bytes(9), array.array("f", [0]))
    with raises(ValueError, "typecode 'B'"):
        m.run(bytes(9), bytearray(8))
    with raises(TypeError, "writable"):
        m.run(bytes(9), b"12345678")


def test_bad_model_files():
    with raises(ValueError, "truncated magic"):
        emlearn_cnn.new(b"TS")
    with raises(ValueError, "magic 'TSNN'"):
        emlearn_cnn.new(b"TSNN" + FLOAT_MODEL[4:])
    with raises(ValueError, "truncated header"):
        emlearn_cnn.new(FLOAT_MODEL[:40])
    with raises(ValueError, "header says"):
        emlearn_cnn.new(FLOAT_MODEL[:-4])
    garbled = bytearray(FLOAT_MODEL)
    garbled[-3] ^= 0x40
    with raises(ValueError, "CRC32"):
        emlearn_cnn.new(garbled)
    with raises(ValueError, "version 3"):
        emlearn_cnn.new(cnn_file((3, 3, 1), [(FLATTEN, NONE, 0, 0, 0, (1, 1, 9), b"", NOQ)], version=3))
    with raises(ValueError, "arena of 16 bytes planned"):
        emlearn_cnn.new(cnn_file((3, 3, 1), [(FLATTEN, NONE, 0, 0, 0, (1, 1, 9), b"", NOQ)], arena=16))
    with raises(ValueError, "kernel 6x6 is larger than 5x5"):
        emlearn_cnn.new(cnn_file((8, 8, 1), [(CONV2D, NONE, 6, 1, 0, (3, 3, 1), floats(*([0.0] * 37)), NOQ)]))
    with raises(ValueError, "cannot map 3x3 to 4x4"):
        emlearn_cnn.new(cnn_file((3, 3, 1), [(MAXPOOL, NONE, 2, 1, 0, (4, 4, 1), b"", NOQ)]))
    with raises(ValueError, "parameter bytes"):
        emlearn_cnn.new(cnn_file((3, 3, 1), [(CONV2D, NONE, 2, 1, 0, (2, 2, 1), floats(1.0), NOQ)]))
    with raises(ValueError, "not finite"):
        emlearn_cnn.new(cnn_file((3, 3, 1), [(CONV2D, NONE, 2, 1, 0, (2, 2, 1), floats(1, 1, 1, float("nan"), 0),
                                              NOQ)]))
    with raises(ValueError, "softmax must be the last"):
        emlearn_cnn.new(cnn_file((1, 1, 3), [(SOFTMAX, NONE, 0, 0, 0, (1, 1, 3), b"", NOQ),
                                             (FLATTEN, NONE, 0, 0, 0, (1, 1, 3), b"", NOQ)]))
    with raises(ValueError, "requantisation"):
        emlearn_cnn.new(cnn_file((1, 1, 1), [(DENSE, NONE, 0, 0, 0, (1, 1, 1), bytes([1, 0, 0, 0]) +
                                              struct.pack("<3i", 0, 1, 0), (-128, 0, -128, 127))], dtype=2))
    with raises(TypeError, "bytes"):
        emlearn_cnn.new(12)
    with raises(TypeError, "not str"):
        emlearn_cnn.new("TSCN")


# Version 2 graphs: residual adds, written by hand. 2x2x1 image -> t1 = conv 1x1 (w 2, b -1) in slot 1 ->
# t2 = relu(t1 + image) in place in slot 0 (the image is not read again) -> t3 = t2 + t1 in slot 1 (in place).
ADD_FLOAT = cnn_file((2, 2, 1), [
    (CONV2D, NONE, 1, 1, 0, (2, 2, 1), floats(2.0, -1.0), NOQ, (0, 0, 1)),
    (ADD, RELU, 0, 0, 0, (2, 2, 1), b"", NOQ, (1, 0, 0)),
    (ADD, NONE, 0, 0, 0, (2, 2, 1), b"", NOQ, (2, 1, 1)),
], version=2, n_slots=2)


def test_float_residual_adds_by_hand():
    m = emlearn_cnn.new(ADD_FLOAT)
    assert m.output_dimensions() == (2, 2, 1) and m.arena_size() == 2 * 16
    out = array.array("f", range(4))
    for img in (bytes([0, 1, 2, 3]), bytes([255, 0, 128, 7])):
        m.run(img, out)
        want = [max(0.0, 3.0 * v - 1.0) + 2.0 * v - 1.0 for v in img]
        assert list(out) == want, (list(out), want)


# int8 add: image q = p - 128 (zp -128, scale 1) + t1 = maxpool 1x1 of it (the same tensor): M1 = M2 = 2^30,
# s1 = s2 = 31 (x0.5 each after the 20-bit shift), output M = 2^30, s = 20 (x2^-20 * 2^10... as computed below)
def q_add(a, b, zp1, zp2, mults, shifts, out_zp, lo, hi):
    def rescale(v, m, s):
        return (v * m + (1 << (s - 1))) >> s

    acc = rescale((a - zp1) << 20, mults[0], shifts[0]) + rescale((b - zp2) << 20, mults[1], shifts[1])
    return min(hi, max(lo, rescale(acc, mults[2], shifts[2]) + out_zp))


MULTS, SHIFTS = (1 << 30, 1 << 29, 1 << 30), (31, 31, 21)
ADD_INT8 = cnn_file((1, 2, 2), [
    (MAXPOOL, NONE, 1, 1, 0, (1, 2, 2), b"", (-128, -128, -128, 127), (0, 0, 1)),
    (ADD, RELU, 0, 0, 0, (1, 2, 2), b"", (-128, -7, -7, 127), (1, 0, 2)),
], dtype=2, out_scale=0.25, out_zp=-7, version=2, n_slots=3)


def test_int8_residual_add_by_hand():
    data = bytearray(ADD_INT8)
    # the add's parameters: M1, M2, M, s1, s2, s at a 16-byte aligned offset after the table
    where = align(48 + 32 * 2)
    data.extend(bytes(where - len(data)) + struct.pack("<6i", *MULTS, *SHIFTS))
    struct.pack_into("<II", data, 48 + 32 + 16, where, 24)
    struct.pack_into("<I", data, 12, len(data))
    struct.pack_into("<I", data, 8, crc32(bytes(data[12:]), crc32(bytes(data[:8]))))
    m = emlearn_cnn.new(data)
    assert m.arena_size() == 3 * 16
    out = array.array("f", range(4))
    for img in (bytes([0, 1, 2, 3]), bytes([255, 0, 128, 7]), bytes([200, 201, 50, 90])):
        m.run(img, out)
        want = [(q_add(p - 128, p - 128, -128, -128, MULTS, SHIFTS, -7, -7, 127) + 7) * 0.25 for p in img]
        assert list(out) == want, (list(out), want)
    with raises(ValueError, "parameter bytes"):   # an int8 add needs its 24 bytes of (M, s)
        emlearn_cnn.new(ADD_INT8)


def test_bad_residual_graphs():
    conv = (CONV2D, NONE, 1, 1, 0, (2, 2, 1), floats(2.0, -1.0), NOQ, (0, 0, 1))
    with raises(ValueError, "(add): shapes 2x2x1 + 1x1x4 -> 2x2x1 differ"):
        emlearn_cnn.new(cnn_file((2, 2, 1), [conv, (FLATTEN, NONE, 0, 0, 0, (1, 1, 4), b"", NOQ, (1, 0, 1)),
                                             (ADD, NONE, 0, 0, 0, (2, 2, 1), b"", NOQ, (1, 2, 0))], version=2,
                                 n_slots=2))
    with raises(ValueError, "writes slot 0 over tensor 0, still needed"):   # the image is read by the add
        emlearn_cnn.new(cnn_file((2, 2, 1), [(CONV2D, NONE, 1, 1, 0, (2, 2, 1), floats(2.0, -1.0), NOQ, (0, 0, 0)),
                                             (ADD, NONE, 0, 0, 0, (2, 2, 1), b"", NOQ, (1, 0, 0))], version=2,
                                 n_slots=2))
    with raises(ValueError, "arena slot 2, the model plans 2"):
        emlearn_cnn.new(cnn_file((2, 2, 1), [(CONV2D, NONE, 1, 1, 0, (2, 2, 1), floats(2.0, -1.0), NOQ, (0, 0, 2))],
                                 version=2, n_slots=2))
    with raises(ValueError, "arena of 16 bytes planned, the layers need 32"):
        emlearn_cnn.new(cnn_file((2, 2, 1), [conv], version=2, n_slots=2, arena=16))
    with raises(ValueError, "input tensors 2, 0 are not earlier"):
        emlearn_cnn.new(cnn_file((2, 2, 1), [(ADD, NONE, 0, 0, 0, (2, 2, 1), b"", NOQ, (2, 0, 1))], version=2,
                                 n_slots=2))
    with raises(ValueError, "unknown type 9"):   # version 1 files have no add
        emlearn_cnn.new(cnn_file((2, 2, 1), [(ADD, NONE, 0, 0, 0, (2, 2, 1), b"", NOQ)]))
    with raises(ValueError, "arena slots"):
        emlearn_cnn.new(cnn_file((2, 2, 1), [conv], version=2, n_slots=0, arena=32))


def test_residual_run_allocates_nothing():
    m = emlearn_cnn.new(ADD_FLOAT)
    img, out = bytes(4), array.array("f", range(4))
    assert heap_allocated_during(lambda: m.run(img, out), 200) == 0
