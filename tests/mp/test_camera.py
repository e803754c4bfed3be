# The camera driver (firmware/drivers/camera.py) against the simulated camera module (ports/host/sim/camera.py)
# fed by binary PGM/PPM files: init from the ESP32-S3-EYE pin table, frame size, GRAYSCALE and RGB565 frames
# preprocessed to a CNN's uint8 input, errors, and no allocation per capture_into().
import sys

sys.path.insert(0, "ports/host/sim")
sys.path.insert(0, "boards/s3-eye")

import board_pins
import camera
import tinysense_image
from drivers.camera import Camera, CameraError, camera_table
from mptest import heap_allocated_during, raises, variant

TMP = "/tmp/tinysense_test_camera_" + variant() + "_"


def write_pnm(name, magic, w, h, pixels, maxval=255):
    path = TMP + name
    with open(path, "wb") as f:
        f.write(b"%s\n# written by test_camera\n%d %d\n%d\n" % (magic, w, h, maxval))
        f.write(bytes(pixels))
    return path


def lcg_bytes(n, seed):
    out = bytearray(n)
    x = seed
    for i in range(n):
        x = (1103515245 * x + 12345) & 0x7FFFFFFF
        out[i] = (x >> 16) & 0xFF
    return out


def blocks_pgm(name, w, h, block, offset):
    # constant block x block tiles: value (offset + 7 * bx + 13 * by) & 0xFF
    pix = bytearray(w * h)
    for y in range(h):
        for x in range(w):
            pix[y * w + x] = (offset + 7 * (x // block) + 13 * (y // block)) & 0xFF
    return write_pnm(name, b"P5", w, h, pix)


def open_eye(**kwargs):
    return Camera.from_pins(board_pins, **kwargs)


def test_s3_eye_pin_table_inits_the_camera():
    camera.sim_reset()
    cam = open_eye()
    assert (cam.width, cam.height) == (320, 240)
    assert cam.pixel_format == camera.PixelFormat.GRAYSCALE and cam.format == tinysense_image.GRAYSCALE
    assert cam.cam.data_pins == board_pins.CAMERA["data_pins"]
    assert cam.cam.pins["xclk_pin"] == 15 and cam.cam.xclk_freq == 20_000_000
    cam2 = Camera.from_pins(board_pins.CAMERA, pixel_format=camera.PixelFormat.RGB565,
                            frame_size=camera.FrameSize.R96X96)
    assert (cam2.width, cam2.height, cam2.bytes_per_pixel) == (96, 96, 2)
    assert camera_table({"CAMERA": board_pins.CAMERA}) is board_pins.CAMERA


def test_bad_pin_tables():
    camera.sim_reset()
    table = dict(board_pins.CAMERA)
    del table["pclk_pin"]
    with raises(ValueError, "lacks pclk_pin"):
        Camera.from_pins(table)
    table = dict(board_pins.CAMERA)
    table["href_pin"] = table["vsync_pin"]
    with raises(CameraError, "GPIO 6 is assigned twice"):
        Camera.from_pins(table)
    table["data_pins"] = [1, 2, 3]
    with raises(ValueError, "8 pins"):
        Camera.from_pins(table)

    class NoCamera:
        pass

    with raises(ValueError, "no CAMERA entry"):
        Camera.from_pins(NoCamera())


def test_grayscale_pgm_frames_downscaled_exactly_and_cycled():
    # 320x240 of 10x10 tiles -> 32x24: every output pixel is one tile's value, exactly
    paths = [blocks_pgm("a.pgm", 320, 240, 10, 0), blocks_pgm("b.pgm", 320, 240, 10, 100)]
    camera.sim_reset()
    camera.sim_set_frames(paths)
    cam = open_eye()
    dst = bytearray(32 * 24)
    for frame in range(3):
        offset = (0, 100, 0)[frame]
        cam.capture_into(dst, 32, 24)
        for j in range(24):
            for i in range(32):
                assert dst[j * 32 + i] == (offset + 7 * i + 13 * j) & 0xFF, (frame, i, j, dst[j * 32 + i])
        assert not cam.cam.held  # the frame buffer was given back
    assert cam.frames == 3
    # to 32x32 rows are 7.5 source rows: tile rows blend (not one tile's value)
    square = bytearray(32 * 32)
    cam.capture_into(square, 32, 32)
    # frame b, row 1 covers source rows 7.5..15: 2.5 rows of tile row 0 (+0), 5 of tile row 1 (+13)
    assert square[32] == 100 + (2 * 5 * 13 + 7) // 15, square[32]
    # min-max normalised: the darkest tile becomes 0 and the brightest 255
    cam.capture_into(dst, 32, 24, normalize="minmax")
    assert min(dst) == 0 and max(dst) == 255


def test_rgb565_ppm_frame_equals_the_luma_reference():
    w = h = 96
    rgb = lcg_bytes(3 * w * h, 99)
    path = write_pnm("c.ppm", b"P6", w, h, rgb)
    camera.sim_reset()
    camera.sim_set_frames([path], loop=False)
    cam = open_eye(pixel_format=camera.PixelFormat.RGB565, frame_size=camera.FrameSize.R96X96)
    full = bytearray(w * h)
    cam.capture_into(full, w, h)
    for k in range(w * h):
        r, g, b = rgb[3 * k] >> 3, rgb[3 * k + 1] >> 2, rgb[3 * k + 2] >> 3  # RGB565 keeps 5/6/5 bits
        r8, g8, b8 = (r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)
        assert full[k] == (77 * r8 + 150 * g8 + 29 * b8 + 128) >> 8, k
    # loop=False: one file, then no frame
    with raises(CameraError, "no frame"):
        cam.capture_into(full, w, h)
    assert cam.failures == 1
    # the same file again, now to 28x28: the area downscale of that gray image
    camera.sim_set_frames([path])
    cam = open_eye(pixel_format=camera.PixelFormat.RGB565, frame_size=camera.FrameSize.R96X96)
    small = bytearray(28 * 28)
    cam.capture_into(small, 28, 28)
    expect = bytearray(28 * 28)
    tinysense_image.downscale_area(full, w, h, expect, 28, 28)
    assert small == expect


def test_grayscale_from_ppm_and_rgb565_from_pgm():
    w = h = 96
    rgb = lcg_bytes(3 * w * h, 5)
    camera.sim_reset()
    camera.sim_set_frames([write_pnm("d.ppm", b"P6", w, h, rgb)])
    cam = open_eye(frame_size=camera.FrameSize.R96X96)
    frame = cam.capture()
    for k in (0, 1, 500, w * h - 1):
        expect = (77 * rgb[3 * k] + 150 * rgb[3 * k + 1] + 29 * rgb[3 * k + 2] + 128) >> 8
        assert frame[k] & 0xFF == expect
    gray = lcg_bytes(w * h, 6)
    camera.sim_set_frames([write_pnm("e.pgm", b"P5", w, h, gray)])
    cam = open_eye(pixel_format=camera.PixelFormat.RGB565, frame_size=camera.FrameSize.R96X96)
    frame = cam.capture()
    hi, lo = frame[0] & 0xFF, frame[1] & 0xFF  # big-endian, as esp32-camera
    g = gray[0]
    assert (hi << 8) | lo == ((g >> 3) << 11) | ((g >> 2) << 5) | (g >> 3)


def test_file_errors_are_clear():
    camera.sim_reset()
    camera.sim_set_frames([write_pnm("small.pgm", b"P5", 64, 48, bytes(64 * 48))])
    with raises(ValueError, "is 64x48, but the camera is configured for 320x240"):
        open_eye()
    camera.sim_set_frames([write_pnm("deep.pgm", b"P5", 2, 2, bytes(8), maxval=65535)])
    with raises(ValueError, "only 8-bit"):
        open_eye()
    path = TMP + "junk.pgm"
    with open(path, "wb") as f:
        f.write(b"P2 2 2 255 1 2 3 4")
    camera.sim_set_frames([path])
    with raises(ValueError, "not a binary PGM (P5) or PPM (P6)"):
        open_eye()
    camera.sim_set_frames([write_pnm("short.pgm", b"P5", 320, 240, bytes(100))])
    with raises(ValueError, "truncated"):
        open_eye()
    camera.sim_reset()
    with raises(ValueError, "not simulated"):
        open_eye(pixel_format=camera.PixelFormat.JPEG)


def test_capture_failure_and_deinit():
    camera.sim_reset()
    cam = open_eye()
    dst = bytearray(32 * 24)
    camera.sim_fail_captures(1)
    with raises(CameraError, "capture failed"):
        cam.capture_into(dst, 32, 24)
    cam.capture_into(dst, 32, 24)  # the test pattern (x + y) & 0xFF: mean of a 10x10 tile at (0, 0) is 9
    assert dst[0] == 9, dst[0]
    with raises(ValueError, "dst holds 768 bytes, but a 30x30 gray image is 900 bytes"):
        cam.capture_into(dst, 30, 30)
    cam.deinit()
    with raises(OSError):
        cam.capture_into(dst, 32, 24)


def test_capture_into_allocates_nothing():
    camera.sim_reset()
    camera.sim_set_frames([blocks_pgm("f.pgm", 320, 240, 10, 3), blocks_pgm("g.pgm", 320, 240, 10, 50)])
    cam = open_eye()
    dst = bytearray(32 * 32)
    assert heap_allocated_during(lambda: cam.capture_into(dst, 32, 32), 20) == 0
    assert heap_allocated_during(lambda: cam.capture_into(dst, 32, 32, "mean_std"), 20) == 0
