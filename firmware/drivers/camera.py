# Camera (OV2640 on the ESP32-S3-EYE) over micropython-camera-API's `camera` module: init from the board's pin
# table, GRAYSCALE or RGB565 capture, and preprocessing in C (tinysense_image: RGB565 luma, exact area downscale,
# optional brightness normalisation) straight from the frame buffer into a preallocated uint8 buffer, the
# H x W x 1 layout a CNN (emlearn_cnn Model.run) takes. On the host the simulated `camera` module
# (ports/host/sim/camera.py) serves frames from PGM/PPM files; this driver runs against it unchanged.
#
#   from drivers.camera import Camera
#   cam = Camera.from_pins(board_pins, pixel_format=None, frame_size=None)   # default GRAYSCALE, QVGA
#   img = bytearray(32 * 32)
#   cam.capture_into(img, 32, 32)                        # 320x240 -> 32x32 gray, area-averaged
#   cam.capture_into(img, 32, 32, normalize="minmax")    # ... and stretched to 0..255
#
# Steady state: capture_into() allocates nothing itself. The real camera.capture() returns a new memoryview
# object over the driver's frame buffer each call (a few dozen bytes of heap, made by the C module); the
# simulated one returns a cached view. The frame buffer is handed back (free_buffer) after preprocessing.
#
#   src = FrameSource(cam, fps=2)        # the shell's sensor source: read() -> raw frame or None
#   frame = src.read()                   # a frame once per 1/fps s (memoryview of the frame buffer, valid
#                                        # until the next read); apps.imageclass preprocesses it itself
import time

import tinysense_image

# Keys of the board's CAMERA table: micropython-camera-API's Camera() keyword arguments
# (tools/tinysense/boards.py DRIVER_REQUIRED_PINS["camera"]).
PIN_KEYS = ("data_pins", "vsync_pin", "href_pin", "pclk_pin", "xclk_pin", "sda_pin", "scl_pin", "powerdown_pin",
            "reset_pin", "xclk_freq")


class CameraError(OSError):
    pass


def camera_table(pins):
    """The CAMERA entry of a pin table: the `board_pins` module, a dict holding "CAMERA", or the entry itself."""
    if isinstance(pins, dict):
        table = pins.get("CAMERA", pins)
    else:
        table = getattr(pins, "CAMERA", None)
        if table is None:
            raise ValueError("the pin table has no CAMERA entry: this board has no camera")
    missing = [key for key in PIN_KEYS if key not in table]
    if missing:
        raise ValueError("camera pin table lacks %s" % ", ".join(missing))
    if len(table["data_pins"]) != 8:
        raise ValueError("camera data_pins must list 8 pins (D0..D7), got %d" % len(table["data_pins"]))
    return table


def _info(cam, name):
    # Releases up to v0.5 have get_pixel_width() etc.; newer ones add properties (and keep get_* deprecated).
    getter = getattr(cam, "get_" + name, None)
    return getter() if getter is not None else getattr(cam, name)


class Camera:
    def __init__(self, cam, *, byteswap=False):
        """cam: an initialised camera.Camera in PixelFormat.GRAYSCALE or RGB565. byteswap: RGB565 pixels come
        little-endian (esp32-camera delivers them big-endian, high byte first; leave False for it)."""
        import camera

        fmt = _info(cam, "pixel_format")
        if fmt == camera.PixelFormat.GRAYSCALE:
            self.format = tinysense_image.GRAYSCALE
            self.bytes_per_pixel = 1
        elif fmt == camera.PixelFormat.RGB565:
            self.format = tinysense_image.RGB565
            self.bytes_per_pixel = 2
        else:
            raise ValueError("camera pixel_format %d: only PixelFormat.GRAYSCALE and RGB565 can be preprocessed"
                             % fmt)
        self.cam = cam
        self.pixel_format = fmt
        self.width = _info(cam, "pixel_width")
        self.height = _info(cam, "pixel_height")
        self.frame_bytes = self.width * self.height * self.bytes_per_pixel
        self.byteswap = bool(byteswap)
        self.frames = 0  # frames preprocessed
        self.failures = 0  # captures that gave no frame

    @classmethod
    def from_pins(cls, pins, *, pixel_format=None, frame_size=None, fb_count=None, grab_mode=None, byteswap=False):
        """Build from a board pin table (see camera_table). pixel_format / frame_size / fb_count / grab_mode:
        camera.PixelFormat / FrameSize / GrabMode values; defaults GRAYSCALE, QVGA (320x240) and the camera
        module's own fb_count and grab_mode."""
        import camera

        table = camera_table(pins)
        kwargs = {key: table[key] for key in PIN_KEYS}
        kwargs["data_pins"] = list(table["data_pins"])  # the module takes a list or bytearray, not a tuple
        kwargs["pixel_format"] = camera.PixelFormat.GRAYSCALE if pixel_format is None else pixel_format
        kwargs["frame_size"] = camera.FrameSize.QVGA if frame_size is None else frame_size
        if fb_count is not None:
            kwargs["fb_count"] = fb_count
        if grab_mode is not None:
            kwargs["grab_mode"] = grab_mode
        try:
            cam = camera.Camera(**kwargs)
        except OSError as e:
            raise CameraError("camera init failed (%s): check the CAMERA pins, PSRAM and the sensor cable" % (e,))
        return cls(cam, byteswap=byteswap)

    def capture_into(self, dst, dst_w, dst_h, normalize=None, mean=128, std=64):
        """Capture one frame and write it to dst (bytearray or array('B') of dst_w * dst_h bytes) as gray,
        area-averaged to dst_w x dst_h, then normalised (None, "minmax" or "mean_std" with mean/std; see
        tinysense_image). Returns dst. Raises CameraError when the camera delivers no frame."""
        frame = self.cam.capture()
        if frame is None:
            self.failures += 1
            raise CameraError("camera capture failed: no frame")
        try:
            if len(frame) != self.frame_bytes:
                raise CameraError("camera frame has %d bytes, expected %d (%dx%d, %d bytes a pixel)"
                                  % (len(frame), self.frame_bytes, self.width, self.height, self.bytes_per_pixel))
            tinysense_image.preprocess(frame, self.format, self.width, self.height, dst, dst_w, dst_h,
                                       byteswap=self.byteswap, normalize=normalize, mean=mean, std=std)
        finally:
            self.cam.free_buffer()
        self.frames += 1
        return dst

    def capture(self):
        """The raw frame (memoryview of the camera's buffer, valid until the next capture)."""
        frame = self.cam.capture()
        if frame is None:
            self.failures += 1
            raise CameraError("camera capture failed: no frame")
        return frame

    def deinit(self):
        self.cam.deinit()


class FrameSource:
    """A Camera as a sensor source of the shell (apps.shell): read() returns the next raw frame (the camera's
    buffer, valid until the next read) when one is due at `fps` frames per second, else None. A read more than a
    frame period late skips the missed frames (counted in `overruns`) instead of bursting to catch up; a capture
    that gives no frame is counted in `failures` and read() returns None. clock: microsecond ticks (default
    time.ticks_us; the host simulator passes machine.sim_ticks_us). Allocates nothing per read (the real camera
    module makes a small memoryview per capture)."""

    def __init__(self, camera, fps, clock=None):
        if not fps > 0:
            raise ValueError("fps must be positive, got %r" % (fps,))
        self.camera = camera
        self.width = camera.width
        self.height = camera.height
        self.format = camera.format
        self.byteswap = camera.byteswap
        self.period_us = max(1, int(round(1000000 / fps)))
        self.clock = clock or time.ticks_us
        self._due = None  # ticks of the next frame
        self._held = False
        self.frames = 0  # frames returned
        self.overruns = 0  # frame periods skipped because read() came late
        self.failures = 0  # captures that gave no frame

    def read(self):
        now = self.clock()
        if self._due is None:
            self._due = now
        late = time.ticks_diff(now, self._due)
        if late < 0:
            return None
        if late >= self.period_us:
            skipped = late // self.period_us
            self.overruns += skipped
            self._due = time.ticks_add(self._due, skipped * self.period_us)
        self._due = time.ticks_add(self._due, self.period_us)
        cam = self.camera.cam
        if self._held:
            cam.free_buffer()  # hand the previous frame back before the next capture
            self._held = False
        frame = cam.capture()
        if frame is None:
            self.failures += 1
            self.camera.failures += 1
            return None
        self._held = True
        self.frames += 1
        return frame

    def stop(self):
        if self._held:
            self.camera.cam.free_buffer()
            self._held = False
