# tinysense_image (C): known values of the RGB565 luma, exact area averages, normalisation, in-place use,
# argument errors with their messages, and no heap allocation per call. The bit-exact comparison against a NumPy
# reference on many sizes is tests/test_image.py.
import array

import tinysense_image as ti
from mptest import heap_allocated_during, raises


def be(*values):
    # RGB565 values as the camera delivers them: big-endian, high byte first
    out = bytearray()
    for v in values:
        out.append(v >> 8)
        out.append(v & 0xFF)
    return bytes(out)


def test_constants_are_the_camera_pixel_formats():
    assert ti.RGB565 == 0 and ti.GRAYSCALE == 3


def test_rgb565_luma_known_values_and_byte_order():
    src = be(0xFFFF, 0x0000, 0xF800, 0x07E0, 0x001F, 0x8410)
    dst = bytearray(6)
    ti.rgb565_to_gray(src, dst, 3, 2)
    # white, black, pure red 77*255, green 150*255, blue 29*255 (+128 >> 8), mid gray (r8=132 g8=130 b8=132)
    assert list(dst) == [255, 0, 77, 149, 29, (77 * 132 + 150 * 130 + 29 * 132 + 128) >> 8], list(dst)
    swapped = bytearray(len(src))
    for i in range(0, len(src), 2):
        swapped[i], swapped[i + 1] = src[i + 1], src[i]
    dst2 = bytearray(6)
    ti.rgb565_to_gray(swapped, dst2, 3, 2, byteswap=True)
    assert dst2 == dst
    ti.rgb565_to_gray(swapped, dst2, 6, 1)  # read the wrong way round: different
    assert dst2 != dst


def test_rgb565_camera_memoryview_and_in_place():
    raw = array.array("b", bytes(8))  # the real camera.capture() returns memoryview(typecode 'b')
    memoryview(raw)[:] = be(0xFFFF, 0xF800, 0x001F, 0x07E0)
    dst = bytearray(4)
    ti.rgb565_to_gray(memoryview(raw), dst, 2, 2)
    assert list(dst) == [255, 77, 29, 149]
    buf = bytearray(be(0xFFFF, 0xF800, 0x001F, 0x07E0))
    ti.rgb565_to_gray(buf, memoryview(buf)[0:4], 4, 1)
    assert list(buf[0:4]) == [255, 77, 29, 149]


def test_downscale_integer_ratio_is_rounded_block_mean():
    src = bytes(range(16))  # 4x4
    dst = bytearray(4)
    ti.downscale_area(src, 4, 4, dst, 2, 2)
    # blocks (0 1 4 5) mean 2.5 -> 3 (half up), (2 3 6 7) 4.5 -> 5, (8 9 12 13) 10.5 -> 11, 12.5 -> 13
    assert list(dst) == [3, 5, 11, 13]
    same = bytearray(16)
    ti.downscale_area(src, 4, 4, same, 4, 4)
    assert bytes(same) == src


def test_downscale_fractional_weights():
    # 3 -> 2 columns: dst 0 covers x in [0, 1.5): 1 * a + 0.5 * b; dst 1: 0.5 * b + 1 * c (weights / 1.5)
    src = bytes([0, 90, 255])
    dst = bytearray(2)
    ti.downscale_area(src, 3, 1, dst, 2, 1)
    assert list(dst) == [(2 * 0 + 1 * 90 + 1) // 3, (1 * 90 + 2 * 255 + 1) // 3], list(dst)
    up = bytearray(4)
    ti.downscale_area(bytes([10, 200]), 2, 1, up, 4, 1)  # upscaling: each covers half a pixel
    assert list(up) == [10, 10, 200, 200]


def test_normalize_minmax_and_mean_std():
    src = bytes([50, 100, 150])
    dst = bytearray(3)
    ti.normalize(src, dst)
    assert list(dst) == [0, 128, 255]  # 127.5 rounds half up
    ti.normalize(bytes([7, 7, 7]), dst)
    assert list(dst) == [0, 0, 0]
    # n=2, values 0 and 2: mean 1, std 1 -> mean -/+ std
    two = bytearray(2)
    ti.normalize(bytes([0, 2]), two, mode="mean_std", mean=100, std=30)
    assert list(two) == [70, 130], list(two)
    ti.normalize(bytes([0, 2]), two, mode="mean_std")
    assert list(two) == [64, 192]
    ti.normalize(bytes([0, 255]), two, mode="mean_std", mean=128, std=255)  # clamped
    assert list(two) == [0, 255]
    ti.normalize(bytes([9, 9]), two, mode="mean_std", mean=77)
    assert list(two) == [77, 77]
    buf = bytearray([50, 100, 150])
    ti.normalize(buf, buf)  # in place
    assert list(buf) == [0, 128, 255]


def test_preprocess_equals_gray_then_downscale_then_normalize():
    w, h = 20, 14
    src = bytearray(2 * w * h)
    x = 12345
    for i in range(len(src)):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        src[i] = (x >> 16) & 0xFF
    gray = bytearray(w * h)
    ti.rgb565_to_gray(src, gray, w, h)
    expect = bytearray(6 * 5)
    ti.downscale_area(gray, w, h, expect, 6, 5)
    got = bytearray(6 * 5)
    ti.preprocess(src, ti.RGB565, w, h, got, 6, 5)
    assert got == expect
    ti.preprocess(gray, ti.GRAYSCALE, w, h, got, 6, 5)
    assert got == expect
    ti.normalize(expect, expect, mode="mean_std", mean=120, std=40)
    ti.preprocess(src, ti.RGB565, w, h, got, 6, 5, normalize="mean_std", mean=120, std=40)
    assert got == expect


def test_errors_name_the_problem():
    gray = bytes(12)
    dst = bytearray(12)
    with raises(ValueError, "src holds 12 bytes, but a 3x4 RGB565 image is 24 bytes"):
        ti.rgb565_to_gray(gray, dst, 3, 4)
    with raises(ValueError, "dst holds 12 bytes, but a 2x2 gray image is 4 bytes"):
        ti.rgb565_to_gray(bytes(8), dst, 2, 2)
    with raises(ValueError, "size must be positive, got 0x4"):
        ti.downscale_area(gray, 0, 4, dst, 3, 4)
    with raises(ValueError, "too large"):
        ti.downscale_area(gray, 70000, 1, dst, 3, 4)
    with raises(ValueError, "typecode 'h'"):
        ti.downscale_area(array.array("h", bytes(24)), 3, 4, dst, 3, 4)
    with raises(ValueError, "the output is uint8"):
        ti.downscale_area(gray, 3, 4, array.array("b", bytes(12)), 3, 4)
    with raises(TypeError, "writable"):
        ti.downscale_area(gray, 3, 4, bytes(12), 3, 4)
    with raises(TypeError, "src must be"):
        ti.downscale_area("abcdefghijkl", 3, 4, dst, 3, 4)
    with raises(TypeError, "src must be"):
        ti.normalize(12, dst)
    with raises(ValueError, "must not overlap"):
        ti.downscale_area(dst, 3, 4, memoryview(dst)[0:4], 2, 2)
    with raises(ValueError, "format must be RGB565 (0) or GRAYSCALE (3), got 4"):
        ti.preprocess(gray, 4, 3, 4, dst, 3, 4)
    with raises(ValueError, "normalize must be None, 'minmax' or 'mean_std'"):
        ti.preprocess(gray, ti.GRAYSCALE, 3, 4, dst, 3, 4, normalize="zscore")
    with raises(ValueError, "mode must be 'minmax' or 'mean_std'"):
        ti.normalize(gray, dst, mode=None)
    with raises(ValueError, "std must be in 1..255, got 0"):
        ti.normalize(gray, dst, mode="mean_std", std=0)
    with raises(ValueError, "mean must be in 0..255, got 300"):
        ti.preprocess(gray, ti.GRAYSCALE, 3, 4, dst, 3, 4, normalize="mean_std", mean=300)
    with raises(ValueError, "same length, got 12 and 11"):
        ti.normalize(gray, bytearray(11))
    with raises(ValueError, "only the same buffer"):
        ti.normalize(memoryview(dst)[0:6], memoryview(dst)[3:9])
    with raises(TypeError):
        ti.preprocess(gray, ti.GRAYSCALE, 3, 4, dst, 3)


def test_no_heap_allocation():
    w, h = 64, 48
    src = bytearray(2 * w * h)
    gray = bytearray(w * h)
    small = bytearray(32 * 32)
    view = memoryview(src)

    def run():
        ti.rgb565_to_gray(view, gray, w, h, byteswap=True)
        ti.downscale_area(gray, w, h, small, 32, 32)
        ti.normalize(small, small, mode="mean_std", mean=128, std=64)
        ti.preprocess(src, ti.RGB565, w, h, small, 32, 32, normalize="minmax")

    assert heap_allocated_during(run, 50) == 0
