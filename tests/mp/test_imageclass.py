# The image classifier app core (firmware/apps/imageclass.py) in the host firmware with a CNN built here by hand
# (4x4 gray input -> flatten -> dense 3 -> softmax: one class per bright region), on raw 96x96 frames: labels and
# probabilities against plain Python, threshold, rate limit, no allocation without a message, bad config; and
# the shell's device path (board camera pins, simulated camera fed by PGM files, FrameSource pacing).
import sys

sys.path.insert(0, "ports/host/sim")
sys.path.insert(0, "boards/s3-eye")

import math
import struct

import camera
import machine
import tinysense_image
from apps.imageclass import ImageClassApp
from drivers.camera import Camera, FrameSource
from mptest import crc32, heap_allocated_during, raises, variant

DENSE, FLATTEN, SOFTMAX = 6, 7, 8  # layer types of the model file (usermods/emlearn_cnn/cnn.h)
NONE = 0
NOQ = (0, 0, 0, 0)


def floats(*values):
    return struct.pack("<%df" % len(values), *values)


def cnn_file(in_shape, layers, in_scale=1.0):
    """A float32 model file, format version 1 (cnn.h): layers (type, act, k, stride, pad, out_shape, params, q)."""
    first = 48 + 32 * len(layers)
    table = b""
    blobs = b""
    largest = in_shape[0] * in_shape[1] * in_shape[2]
    for kind, act, k, st, p, out, params, q in layers:
        where = 0
        if params:
            blobs += bytes(-(first + len(blobs)) % 16)
            where = first + len(blobs)
            blobs += params
        table += struct.pack("<BBBBBBBBHHHHIIbbbbI", kind, act, k, k, st, st, p, p, out[0], out[1], out[2], 0,
                             where, len(params), q[0], q[1], q[2], q[3], 0)
        largest = max(largest, out[0] * out[1] * out[2])
    body = table + blobs
    body += bytes(-(48 + len(body)) % 4)
    arena = 2 * ((4 * largest + 15) // 16 * 16)
    rest = struct.pack("<IIHHHHfffiI", 48 + len(body), arena, in_shape[0], in_shape[1], in_shape[2], 0, in_scale,
                       0.0, 1.0, 0, 0)
    head = struct.pack("<4sBBBB", b"TSCN", 1, 1, len(layers), 0)
    return head + struct.pack("<I", crc32(rest + body, crc32(head))) + rest + body

TMP = "/tmp/tinysense_test_imageclass_" + variant() + "_"
LABELS = ["left", "right", "bottom"]
GAIN = 6.0


def region(i):
    """Class of input pixel i of the 4x4 image: 0 top-left, 1 top-right, 2 bottom half."""
    y, x = divmod(i, 4)
    return 2 if y >= 2 else (0 if x < 2 else 1)


def weights():
    return [[GAIN / 4 if region(i) == k else (-GAIN / 8 if k == 2 else 0.0) for i in range(16)] for k in range(3)]


def model_file(last=SOFTMAX):
    w = weights()
    layers = [(FLATTEN, NONE, 0, 0, 0, (1, 1, 16), b"", NOQ),
              (DENSE, NONE, 0, 0, 0, (1, 1, 3), floats(*(w[0] + w[1] + w[2])) + floats(0.0, 0.0, 0.0), NOQ)]
    if last == SOFTMAX:
        layers.append((SOFTMAX, NONE, 0, 0, 0, (1, 1, 3), b"", NOQ))
    return cnn_file((4, 4, 1), layers, in_scale=1.0 / 255.0)


def expected(image4):
    """Softmax probabilities of the hand-built model on a 4x4 preprocessed image, in Python floats."""
    w = weights()
    z = [sum(w[k][i] * image4[i] / 255.0 for i in range(16)) for k in range(3)]
    top = max(z)
    e = [math.exp(v - top) for v in z]
    s = sum(e)
    return [v / s for v in e]


def frame(bright, level=250, background=10, size=96):
    """A size x size gray frame, the region of class `bright` at `level` (None: all background)."""
    out = bytearray(bytes([background]) * (size * size))
    block = size // 4
    for y in range(size):
        for x in range(size):
            if bright is not None and region((y // block) * 4 + x // block) == bright:
                out[y * size + x] = level
    return out


def app(**section):
    config = {"labels": LABELS}
    config.update(section)
    return ImageClassApp({"imageclass": config}, model_file(), 96, 96, tinysense_image.GRAYSCALE, fps=2)


def test_labels_confidence_and_time():
    a = app(threshold=0.0, interval_s=0.5)
    for k in (0, 1, 2, 1):
        msgs = a.process(frame(k))
        assert len(msgs) == 1, msgs
        m = msgs[0]
        small = bytearray(16)
        tinysense_image.downscale_area(frame(k), 96, 96, small, 4, 4)
        want = expected(small)
        assert m["class"] == LABELS[k] and want[k] == max(want)
        assert abs(m["confidence"] - want[k]) < 1e-5, (m, want)
        assert all(abs(a.proba[i] - want[i]) < 1e-5 for i in range(3))
    assert m["t"] == 1500  # the 4th frame at 2 frames/s
    assert a.samples == 4 and a.below == 0 and a.limited == 0


def test_threshold_and_rate_limit():
    a = app(threshold=0.9, interval_s=2.0, max_messages=2)  # windows of 4 frames, at most 2 messages each
    dim = frame(0, level=60)  # a faint region: the top class is under 0.9
    small = bytearray(16)
    tinysense_image.downscale_area(dim, 96, 96, small, 4, 4)
    assert max(expected(small)) < 0.9
    sent = [len(a.process(f)) for f in (frame(0), dim, frame(1), frame(2), frame(0), frame(2), frame(2), frame(1),
                                        frame(1))]
    #        window 1: sent, below, sent, limited | window 2: sent, sent, limited, limited | window 3: sent
    assert sent == [1, 0, 1, 0, 1, 1, 0, 0, 1], sent
    assert a.below == 1 and a.limited == 3 and a.samples == 9


def test_normalize_is_applied_before_the_model():
    a = app(threshold=0.0, normalize="minmax")
    f = frame(2, level=40, background=20)  # low contrast: minmax stretches it to 0..255
    m = a.process(f)[0]
    small = bytearray(16)
    tinysense_image.preprocess(f, tinysense_image.GRAYSCALE, 96, 96, small, 4, 4, normalize="minmax")
    assert max(small) == 255 and min(small) == 0
    assert m["class"] == "bottom" and abs(m["confidence"] - expected(small)[2]) < 1e-5


def test_rgb565_frames():
    a = ImageClassApp({"labels": LABELS, "threshold": 0.0}, model_file(), 96, 96, tinysense_image.RGB565)
    gray = frame(1)
    rgb = bytearray(2 * len(gray))
    for i, g in enumerate(gray):
        v = ((g & 0xF8) << 8) | ((g & 0xFC) << 3) | (g >> 3)
        rgb[2 * i] = v >> 8
        rgb[2 * i + 1] = v & 0xFF
    assert a.process(rgb)[0]["class"] == "right"


def test_no_allocation_without_a_message():
    a = app(threshold=0.99, interval_s=1000.0)
    dim = frame(0, level=60)
    assert heap_allocated_during(lambda: a.process(dim), 200) == 0  # under the threshold
    b = app(threshold=0.0, interval_s=1000.0)
    f = frame(2)
    b.process(f)  # the one message of the window
    assert heap_allocated_during(lambda: b.process(f), 200) == 0  # over the threshold, rate-limited
    assert b.limited == 201


def test_bad_config_and_models():
    with raises(ValueError, "needs \"labels\""):
        ImageClassApp({}, model_file(), 96, 96)
    with raises(ValueError, "3 outputs, config lists 2 labels"):
        ImageClassApp({"labels": ["a", "b"]}, model_file(), 96, 96)
    with raises(ValueError, "does not end in softmax"):
        ImageClassApp({"labels": LABELS}, model_file(last=DENSE), 96, 96)
    with raises(ValueError, "threshold must be a probability"):
        app(threshold=1.5)
    with raises(ValueError, "normalize must be"):
        app(normalize="zscore")
    with raises(ValueError, "max_messages"):
        app(max_messages=0)
    with raises(ValueError, "config input [8, 8]"):
        app(input=[8, 8])
    rgb_in = cnn_file((2, 2, 3), [(FLATTEN, NONE, 0, 0, 0, (1, 1, 12), b"", NOQ),
                                  (SOFTMAX, NONE, 0, 0, 0, (1, 1, 12), b"", NOQ)])
    with raises(ValueError, "takes 3 channels"):
        ImageClassApp({"labels": [str(i) for i in range(12)]}, rgb_in, 96, 96)
    with raises(ValueError, "CRC32"):
        ImageClassApp({"labels": LABELS}, model_file()[:-1] + b"\x01", 96, 96)
    a = app()
    with raises(ValueError, "src"):
        a.process(bytearray(95 * 96))  # a frame of the wrong size


def write_pgm(name, pixels, size=96):
    path = TMP + name
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (size, size))
        f.write(pixels)
    return path


class _Unused:
    """apps.shell imports asyncio and json, which the host firmware lacks; device_app() uses neither."""


def test_shell_device_app_on_the_simulated_camera():
    for name in ("asyncio", "json"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = _Unused
    from apps import shell

    model_path = TMP + "model.tscn"
    with open(model_path, "wb") as f:
        f.write(model_file())
    paths = [write_pgm("f%d.pgm" % k, frame(k)) for k in (2, 0, 1)]
    machine.sim_reset()
    camera.sim_reset()
    camera.sim_set_frames(paths, loop=False)
    config = {"app": "imageclass", "sample_rate": 4, "models": [model_path],
              "imageclass": {"labels": LABELS, "threshold": 0.5, "interval_s": 0.25, "frame_size": "R96X96"}}
    core, source = shell.device_app(config)
    assert isinstance(source, FrameSource) and source.period_us == 250000
    source.clock = machine.sim_ticks_us
    got = []
    for _ in range(100):  # 10 ms polls: a frame every 250 ms
        machine.sim_advance_ms(10)
        f = source.read()
        if f is not None:
            got += [m["class"] for m in core.process(f)]
    assert got == ["bottom", "left", "right"], got
    assert source.frames == 3 and source.overruns == 0 and source.failures == 1  # the 4th capture: no more files
    with raises(shell.ConfigError, "frame_size 'HUGE'"):
        config["imageclass"]["frame_size"] = "HUGE"
        shell.device_app(config)
    camera.sim_reset()


def test_frame_source_skips_late_frames():
    camera.sim_reset()
    machine.sim_reset()
    import board_pins

    cam = Camera.from_pins(board_pins, frame_size=camera.FrameSize.R96X96)
    src = FrameSource(cam, 10, clock=machine.sim_ticks_us)
    assert src.read() is not None and src.read() is None  # the first at once, the next 100 ms later
    machine.sim_advance_ms(350)
    assert src.read() is not None and src.overruns == 2 and src.read() is None
    machine.sim_advance_ms(49)
    assert src.read() is None
    machine.sim_advance_ms(1)
    assert src.read() is not None and src.frames == 3
    camera.sim_fail_captures(1)
    machine.sim_advance_ms(100)
    assert src.read() is None and src.failures == 1 and cam.failures == 1
    with raises(ValueError, "fps must be positive"):
        FrameSource(cam, 0)
