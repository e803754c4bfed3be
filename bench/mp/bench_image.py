# Preprocessing of one 320x240 RGB565 camera frame to a 32x32 gray CNN input (BT.601 luma + exact area
# downscale): tinysense_image.preprocess (C, one pass, no full-size gray buffer) against the same integer
# algorithm as a user would write it in MicroPython (luma per pixel, then area weights per output pixel).
import tinysense_image
from benchlib import main

W, H = 320, 240
DW, DH = 32, 32


def _frame():
    src = bytearray(2 * W * H)
    x = 1
    for i in range(len(src)):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        src[i] = (x >> 16) & 0xFF
    return src


def c_preprocess():
    src, dst = _frame(), bytearray(DW * DH)
    return lambda: tinysense_image.preprocess(src, tinysense_image.RGB565, W, H, dst, DW, DH)


def _spans(src, dst):
    # per output index: (first source index, weights of the covered source indices), x scaled by dst
    out = []
    for i in range(dst):
        a, b = i * src, (i + 1) * src
        x0, x1 = a // dst, (b + dst - 1) // dst
        out.append((x0, [min((x + 1) * dst, b) - max(x * dst, a) for x in range(x0, x1)]))
    return out


def python_preprocess():
    src, dst = _frame(), bytearray(DW * DH)
    gray = bytearray(W * H)
    xs, ys = _spans(W, DW), _spans(H, DH)
    total = W * H

    def run():
        for i in range(W * H):
            v = (src[2 * i] << 8) | src[2 * i + 1]
            r, g, b = v >> 11, (v >> 5) & 63, v & 31
            r = (r << 3) | (r >> 2)
            g = (g << 2) | (g >> 4)
            b = (b << 3) | (b >> 2)
            gray[i] = (77 * r + 150 * g + 29 * b + 128) >> 8
        k = 0
        for y0, wy in ys:
            for x0, wx in xs:
                s = 0
                row = y0 * W + x0
                for w_y in wy:
                    rs = 0
                    p = row
                    for w_x in wx:
                        rs += w_x * gray[p]
                        p += 1
                    s += w_y * rs
                    row += W
                dst[k] = (s + total // 2) // total
                k += 1
        return dst

    return run


main([("python_preprocess", python_preprocess), ("c_preprocess", c_preprocess)])
