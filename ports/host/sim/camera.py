# Simulated `camera` module of micropython-camera-API (cnadler86/micropython-camera-API, the C module in the
# ESP32-S3-EYE image) for the host firmware: the same class and constant names and the subset of the API the
# frozen driver (firmware/drivers/camera.py) and apps use, with frames read from image files.
#
#   from camera import Camera, PixelFormat, FrameSize, GrabMode
#   cam = Camera(data_pins=[...], vsync_pin=6, href_pin=7, sda_pin=4, scl_pin=5, pclk_pin=13, xclk_pin=15,
#                xclk_freq=20_000_000, powerdown_pin=-1, reset_pin=-1,
#                pixel_format=PixelFormat.GRAYSCALE, frame_size=FrameSize.QVGA)
#   frame = cam.capture()      # memoryview, typecode 'b' (as the real module), or None if the capture failed
#
# Simulation controls (not in the real module, named sim_* like machine.sim_*):
#   camera.sim_set_frames(paths, loop=True)  frames for the next Camera(): binary PGM (P5, gray) or PPM (P6, RGB)
#                                            files of exactly the configured frame size, maxval <= 255; each
#                                            capture() returns the next one (cycling when loop, else None once
#                                            all were returned). Without files a test pattern is captured.
#   camera.sim_fail_captures(n)              the next n capture() calls return None (as a failed esp_camera_fb_get)
#   camera.sim_reset()                       no files, no failures
#
# Pixel formats: RGB565 (2 bytes a pixel, big-endian: high byte first, as esp32-camera delivers them) and
# GRAYSCALE (1 byte a pixel). PPM -> RGB565 truncates to 5/6/5 bits; PPM -> GRAYSCALE uses the BT.601 luma
# (77 R + 150 G + 29 B + 128) >> 8 (the OV2640 sends its Y channel); PGM -> RGB565 packs gray >> 3/2/3 bits.
# The file is decoded once, at init() / reconfigure(): capture() then allocates nothing.
#
# Differences from the real module, on purpose: the constructor validates but consumes no frame (the real one
# captures one to check the sensor); JPEG and the other formats are refused; sensor settings are plain attributes.
import array

_GPIO_MAX = 48  # ESP32-S3: GPIO 0..48


class PixelFormat:
    RGB565 = 0
    YUV422 = 1
    YUV420 = 2
    GRAYSCALE = 3
    JPEG = 4
    RGB888 = 5
    RAW = 6
    RGB444 = 7
    RGB555 = 8


class FrameSize:
    R96X96 = 0
    QQVGA = 1
    R128x128 = 2
    QCIF = 3
    HQVGA = 4
    R240X240 = 5
    QVGA = 6
    R320X320 = 7
    CIF = 8
    HVGA = 9
    VGA = 10
    SVGA = 11
    XGA = 12
    HD = 13
    SXGA = 14
    UXGA = 15
    FHD = 16
    P_HD = 17
    P_3MP = 18
    QXGA = 19
    QHD = 20
    WQXGA = 21
    P_FHD = 22
    QSXGA = 23


class GrabMode:
    WHEN_EMPTY = 0
    LATEST = 1


class GainCeiling:
    X2 = 0
    X4 = 1
    X8 = 2
    X16 = 3
    X32 = 4
    X64 = 5
    X128 = 6


# (width, height) by FrameSize value (esp32-camera's resolution table, in its framesize_t order).
_RESOLUTION = (
    (96, 96), (160, 120), (128, 128), (176, 144), (240, 176), (240, 240), (320, 240), (320, 320), (400, 296),
    (480, 320), (640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 1024), (1600, 1200), (1920, 1080),
    (720, 1280), (864, 1536), (2048, 1536), (2560, 1440), (2560, 1600), (1080, 1920), (2560, 1920),
)
_MAX_FRAME_SIZE = FrameSize.UXGA  # the OV2640's largest
_SIMULATED_FORMATS = (PixelFormat.RGB565, PixelFormat.GRAYSCALE)

_state = {"paths": (), "loop": True, "fail": 0}


def sim_reset():
    _state["paths"] = ()
    _state["loop"] = True
    _state["fail"] = 0


def sim_set_frames(paths, loop=True):
    if isinstance(paths, str):
        paths = (paths,)
    _state["paths"] = tuple(paths)
    _state["loop"] = bool(loop)


def sim_fail_captures(n):
    _state["fail"] = int(n)


def Version():
    return "tinysense simulated camera (micropython-camera-API subset)"


class ImageFileError(ValueError):
    pass


def _read_pnm(path):
    """(kind, width, height, maxval, pixel bytes) of a binary PGM (P5) or PPM (P6) file."""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[0:2]
    if magic not in (b"P5", b"P6"):
        raise ImageFileError("%s: not a binary PGM (P5) or PPM (P6) file (starts %r)" % (path, magic))
    fields = []
    pos = 2
    n = len(data)
    while len(fields) < 3:
        # whitespace and comments, then one decimal field
        while pos < n and data[pos] in b" \t\r\n":
            pos += 1
        if pos < n and data[pos] == 35:  # '#': comment to the end of the line
            while pos < n and data[pos] not in b"\r\n":
                pos += 1
            continue
        start = pos
        while pos < n and 48 <= data[pos] <= 57:
            pos += 1
        if start == pos:
            raise ImageFileError("%s: bad header (width, height and maxval expected)" % path)
        fields.append(int(data[start:pos]))
    if pos >= n or data[pos] not in b" \t\r\n":
        raise ImageFileError("%s: bad header (no whitespace after maxval)" % path)
    pos += 1
    width, height, maxval = fields
    if width <= 0 or height <= 0:
        raise ImageFileError("%s: bad size %dx%d" % (path, width, height))
    if not 0 < maxval <= 255:
        raise ImageFileError("%s: maxval %d; only 8-bit files (maxval 1..255) are supported" % (path, maxval))
    channels = 1 if magic == b"P5" else 3
    size = width * height * channels
    if n - pos < size:
        raise ImageFileError("%s: truncated: %d of %d pixel bytes" % (path, n - pos, size))
    return channels, width, height, maxval, data[pos : pos + size]


def _decode(path, pixel_format, width, height):
    """The file as a frame buffer of the camera's pixel format and size (array('b'), as the real frame)."""
    channels, w, h, maxval, pix = _read_pnm(path)
    if (w, h) != (width, height):
        raise ImageFileError("%s is %dx%d, but the camera is configured for %dx%d frames"
                             % (path, w, h, width, height))
    if maxval != 255:
        pix = bytes((v * 255 + maxval // 2) // maxval for v in pix)
    n = width * height
    if pixel_format == PixelFormat.GRAYSCALE:
        if channels == 1:
            out = pix
        else:
            out = bytearray(n)
            for i in range(n):
                k = 3 * i
                out[i] = (77 * pix[k] + 150 * pix[k + 1] + 29 * pix[k + 2] + 128) >> 8
    else:  # RGB565, big-endian
        out = bytearray(2 * n)
        for i in range(n):
            if channels == 1:
                r = g = b = pix[i]
            else:
                k = 3 * i
                r, g, b = pix[k], pix[k + 1], pix[k + 2]
            v = ((r & 0xF8) << 8) | ((g & 0xFC) << 3) | (b >> 3)
            out[2 * i] = v >> 8
            out[2 * i + 1] = v & 0xFF
    frame = array.array("b", bytes(len(out)))
    memoryview(frame)[:] = out  # raw bytes: 200 stays the byte 0xC8 (read as -56 through typecode 'b')
    return frame


def _pattern(pixel_format, width, height):
    """Test pattern when no file is given: a diagonal gray ramp (x + y) & 0xFF."""
    bpp = 2 if pixel_format == PixelFormat.RGB565 else 1
    out = bytearray(bpp * width * height)
    i = 0
    for y in range(height):
        for x in range(width):
            g = (x + y) & 0xFF
            if bpp == 1:
                out[i] = g
            else:
                v = ((g & 0xF8) << 8) | ((g & 0xFC) << 3) | (g >> 3)
                out[i] = v >> 8
                out[i + 1] = v & 0xFF
            i += bpp
    frame = array.array("b", bytes(len(out)))
    memoryview(frame)[:] = out
    return frame


def _required(name, value):
    if value is None:
        raise TypeError("'%s' argument required" % name)
    return value


class Camera:
    def __init__(self, *, data_pins=None, pclk_pin=None, vsync_pin=None, href_pin=None, sda_pin=None,
                 scl_pin=None, xclk_pin=None, xclk_freq=20_000_000, powerdown_pin=-1, reset_pin=-1,
                 pixel_format=PixelFormat.RGB565, frame_size=FrameSize.QQVGA, jpeg_quality=85, fb_count=2,
                 grab_mode=GrabMode.LATEST, init=True):
        # Like a build without a board camera model: every signal pin is required.
        data_pins = _required("data_pins", data_pins)
        if not isinstance(data_pins, (list, bytearray)):
            raise TypeError("data_pins must be a list or bytearray")
        if len(data_pins) != 8:
            raise ValueError("data_pins must have 8 elements")
        pins = {"pclk_pin": pclk_pin, "vsync_pin": vsync_pin, "href_pin": href_pin, "sda_pin": sda_pin,
                "scl_pin": scl_pin, "xclk_pin": xclk_pin}
        for name in pins:
            _required(name, pins[name])
        pins["powerdown_pin"] = powerdown_pin
        pins["reset_pin"] = reset_pin
        if xclk_freq < 1000:
            xclk_freq *= 1_000_000  # MHz, as the real constructor reads small values
        if xclk_freq > 40_000_000:
            raise ValueError("xclk frequency cannot be grather than 40MHz")
        if not 0 <= jpeg_quality <= 100:
            raise ValueError("jpeg quality must be in range 0-100")
        if pixel_format < 0 or pixel_format > PixelFormat.RGB555:
            raise ValueError("Invalid pixel_format")
        if grab_mode not in (GrabMode.WHEN_EMPTY, GrabMode.LATEST):
            raise ValueError("Invalid grab_mode")
        self.data_pins = [int(p) for p in data_pins]
        self.pins = pins
        self.xclk_freq = xclk_freq
        self.jpeg_quality = jpeg_quality
        self._fb_count = 1 if fb_count < 1 else (2 if fb_count > 2 else fb_count)
        self._grab_mode = grab_mode
        self._pixel_format = pixel_format
        self._frame_size = frame_size
        self._initialized = False
        self._frames = ()
        self._views = ()
        self._next = 0
        self.captures = 0  # capture() calls that returned a frame
        self.held = False  # a frame buffer is out (captured and not yet freed)
        self._check_pins()
        self.init()
        if not init:
            self.deinit()

    def _check_pins(self):
        signals = self.data_pins + [self.pins[k] for k in ("pclk_pin", "vsync_pin", "href_pin", "sda_pin",
                                                           "scl_pin", "xclk_pin")]
        optional = [self.pins["powerdown_pin"], self.pins["reset_pin"]]
        used = [p for p in signals + optional if p != -1]
        for p in signals:
            if not 0 <= p <= _GPIO_MAX:
                raise OSError("camera init failed: GPIO %d is not a valid ESP32-S3 pin (0..%d)" % (p, _GPIO_MAX))
        for p in optional:
            if p != -1 and not 0 <= p <= _GPIO_MAX:
                raise OSError("camera init failed: GPIO %d is not a valid ESP32-S3 pin (0..%d)" % (p, _GPIO_MAX))
        for p in used:
            if used.count(p) > 1:
                raise OSError("camera init failed: GPIO %d is assigned twice" % p)

    # ---- life cycle ----

    def init(self):
        if self._initialized:
            return
        if self._pixel_format not in _SIMULATED_FORMATS:
            raise ValueError("simulated camera: pixel_format %d is not simulated; use PixelFormat.RGB565 or "
                             "PixelFormat.GRAYSCALE" % self._pixel_format)
        if not 0 <= self._frame_size < len(_RESOLUTION):
            raise ValueError("Invalid frame_size %d" % self._frame_size)
        if self._frame_size > _MAX_FRAME_SIZE:
            self._frame_size = _MAX_FRAME_SIZE  # the real driver scales down to the sensor's maximum too
        w, h = _RESOLUTION[self._frame_size]
        paths = _state["paths"]
        if paths:
            self._frames = tuple(_decode(p, self._pixel_format, w, h) for p in paths)
        else:
            self._frames = (_pattern(self._pixel_format, w, h),)
        self._views = tuple(memoryview(f) for f in self._frames)
        self._loop = _state["loop"] or not paths
        self._next = 0
        self._initialized = True

    def deinit(self):
        self._initialized = False
        self._frames = ()
        self._views = ()
        self.held = False

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.deinit()

    def __del__(self):
        self.deinit()

    def _check_init(self):
        if not self._initialized:
            raise OSError(2)  # ENOENT, as the real module

    def reconfigure(self, *, frame_size=None, pixel_format=None, grab_mode=None, fb_count=None):
        self._check_init()
        if pixel_format is not None and (pixel_format < 0 or pixel_format > PixelFormat.RGB555):
            raise ValueError("Invalid pixel_format")
        if grab_mode is not None and grab_mode not in (GrabMode.WHEN_EMPTY, GrabMode.LATEST):
            raise ValueError("Invalid grab_mode")
        self.deinit()
        if frame_size is not None:
            self._frame_size = frame_size
        if pixel_format is not None:
            self._pixel_format = pixel_format
        if grab_mode is not None:
            self._grab_mode = grab_mode
        if fb_count is not None:
            self._fb_count = 1 if fb_count < 1 else (2 if fb_count > 2 else fb_count)
        self.init()

    # ---- frames ----

    def frame_available(self):
        self._check_init()
        return True

    def capture(self):
        self._check_init()
        self.held = False  # the real module returns the previous buffer first
        if _state["fail"] > 0:
            _state["fail"] -= 1
            return None
        if self._next >= len(self._views):
            if not self._loop:
                return None
            self._next = 0
        view = self._views[self._next]
        self._next += 1
        self.captures += 1
        self.held = True
        return view

    def free_buffer(self):
        self.held = False

    # ---- read-only information (get_* methods of the releases, properties of the newer ones) ----

    def get_pixel_format(self):
        return self._pixel_format

    def get_frame_size(self):
        self._check_init()
        return self._frame_size

    def set_frame_size(self, value):
        self.reconfigure(frame_size=value)

    def get_grab_mode(self):
        return self._grab_mode

    def get_fb_count(self):
        return self._fb_count

    def get_pixel_width(self):
        self._check_init()
        return _RESOLUTION[self._frame_size][0]

    def get_pixel_height(self):
        self._check_init()
        return _RESOLUTION[self._frame_size][1]

    def get_max_frame_size(self):
        return _MAX_FRAME_SIZE

    def get_sensor_name(self):
        return "OV2640"

    @property
    def pixel_format(self):
        return self.get_pixel_format()

    @property
    def frame_size(self):
        return self.get_frame_size()

    @property
    def grab_mode(self):
        return self.get_grab_mode()

    @property
    def fb_count(self):
        return self.get_fb_count()

    @property
    def pixel_width(self):
        return self.get_pixel_width()

    @property
    def pixel_height(self):
        return self.get_pixel_height()

    @property
    def max_frame_size(self):
        return self.get_max_frame_size()

    @property
    def sensor_name(self):
        return self.get_sensor_name()
