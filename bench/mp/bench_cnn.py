# CNN: an 8x8x1 image through conv 3x3 same (8 channels, ReLU) -> maxpool 2x2 -> flatten -> dense 128 -> 10,
# the shape of the digits model: emlearn_cnn in float32 and in int8 against the same network as plain
# MicroPython loops. The model files are written here (format: usermods/emlearn_cnn/cnn.h).
import array
import struct

import emlearn_cnn
from benchlib import main

H = W = 8
C1 = 8
N_OUT = 10
FLAT = (H // 2) * (W // 2) * C1


def _crc32(data, crc=0):
    crc = ~crc & 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return ~crc & 0xFFFFFFFF


def _file(dtype, conv_params, dense_params, q):
    layers = [(1, 1, 3, 1, 1, (H, W, C1), conv_params, q[0]), (3, 0, 2, 2, 0, (H // 2, W // 2, C1), b"", q[1]),
              (7, 0, 0, 0, 0, (1, 1, FLAT), b"", q[1]), (6, 0, 0, 0, 0, (1, 1, N_OUT), dense_params, q[2])]
    first = 48 + 32 * len(layers)
    table = blobs = b""
    for kind, act, k, s, p, out, params, qz in layers:
        where = 0
        if params:
            blobs += bytes((-(first + len(blobs))) % 16)
            where = first + len(blobs)
            blobs += params
        table += struct.pack("<BBBBBBBBHHHHIIbbbbI", kind, act, k, k, s, s, p, p, out[0], out[1], out[2], 0, where,
                             len(params), qz[0], qz[1], qz[2], qz[3], 0)
    body = table + blobs
    body += bytes((-(48 + len(body))) % 4)
    arena = 2 * ((H * W * C1 * (4 if dtype == 1 else 1) + 15) // 16 * 16)
    rest = struct.pack("<IIHHHHfffiI", 48 + len(body), arena, H, W, 1, 0, 1 / 255, 0.0, 0.05, q[2][1], 0)
    head = struct.pack("<4sBBBB", b"TSCN", 1, dtype, len(layers), 0)
    return head + struct.pack("<I", _crc32(rest + body, _crc32(head))) + rest + body


def _weights(n, seed):
    return [((i * 7919 + seed * 104729) % 2001 - 1000) / 2000 for i in range(n)]


CONV_W = _weights(C1 * 9, 1)
DENSE_W = _weights(N_OUT * FLAT, 2)


def _image():
    return bytes((i * 37) % 256 for i in range(H * W))


def c_float():
    p1 = struct.pack("<%df" % (C1 * 9 + C1), *(CONV_W + [0.01] * C1))
    p2 = struct.pack("<%df" % (N_OUT * FLAT + N_OUT), *(DENSE_W + [0.0] * N_OUT))
    m = emlearn_cnn.new(_file(1, p1, p2, [(0, 0, 0, 0)] * 3))
    img, out = _image(), array.array("f", bytes(4 * N_OUT))
    return lambda: m.run(img, out)


def c_int8():
    def q(ws):
        return bytes(int(w * 254) & 0xFF for w in ws)

    def tail(n):
        return struct.pack("<%di" % (3 * n), *([100] * n + [1 << 30] * n + [38] * n))

    p1 = q(CONV_W) + tail(C1)
    p2 = q(DENSE_W) + tail(N_OUT)
    m = emlearn_cnn.new(_file(2, p1, p2, [(-128, -128, -128, 127), (-128, -128, -128, 127), (-128, 3, -128, 127)]))
    img, out = _image(), array.array("f", bytes(4 * N_OUT))
    return lambda: m.run(img, out)


def python_loop():
    img = [p / 255 for p in _image()]
    conv = [0.0] * (H * W * C1)
    pooled = [0.0] * FLAT
    out = [0.0] * N_OUT

    def run():
        for y in range(H):
            for x in range(W):
                for o in range(C1):
                    acc = 0.01
                    for ky in range(3):
                        iy = y + ky - 1
                        if 0 <= iy < H:
                            for kx in range(3):
                                ix = x + kx - 1
                                if 0 <= ix < W:
                                    acc += CONV_W[o * 9 + ky * 3 + kx] * img[iy * W + ix]
                    conv[(y * W + x) * C1 + o] = acc if acc > 0 else 0.0
        for y in range(H // 2):
            for x in range(W // 2):
                for c in range(C1):
                    a = conv[((2 * y) * W + 2 * x) * C1 + c]
                    b = conv[((2 * y) * W + 2 * x + 1) * C1 + c]
                    d = conv[((2 * y + 1) * W + 2 * x) * C1 + c]
                    e = conv[((2 * y + 1) * W + 2 * x + 1) * C1 + c]
                    pooled[(y * (W // 2) + x) * C1 + c] = max(a, b, d, e)
        for o in range(N_OUT):
            acc = 0.0
            for k in range(FLAT):
                acc += DENSE_W[o * FLAT + k] * pooled[k]
            out[o] = acc

    return run


main([("python_loop", python_loop), ("c_float", c_float), ("c_int8", c_int8)])
