"""Image files on the PC side of the image classifier: read PGM/PPM/PNG, write PGM/PPM, camera frame sizes, and the
device's own preprocessing (tinysense_image in the host firmware) for resizing training images.

Gray is what the device classifies: colour images become gray with the camera path's BT.601 integer luma
(77 R + 150 G + 29 B + 128) >> 8 (ports/host/sim/camera.py, usermods/tinysense_image/image.h).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinysense import host
from tinysense.errors import CommandError

IMAGE_SUFFIXES = (".pgm", ".ppm", ".pnm", ".png")

# camera.FrameSize names -> (width, height) (esp32-camera's resolution table, up to the OV2640's UXGA)
FRAME_SIZES: dict[str, tuple[int, int]] = {
    "R96X96": (96, 96), "QQVGA": (160, 120), "R128x128": (128, 128), "QCIF": (176, 144), "HQVGA": (240, 176),
    "R240X240": (240, 240), "QVGA": (320, 240), "R320X320": (320, 320), "CIF": (400, 296), "HVGA": (480, 320),
    "VGA": (640, 480), "SVGA": (800, 600), "XGA": (1024, 768), "HD": (1280, 720), "SXGA": (1280, 1024),
    "UXGA": (1600, 1200),
}


def frame_size_name(width: int, height: int) -> str | None:
    for name, size in FRAME_SIZES.items():
        if size == (width, height):
            return name
    return None


def _pnm(data: bytes, path: Path) -> np.ndarray:
    magic = data[:2]
    fields: list[int] = []
    pos = 2
    while len(fields) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            while pos < len(data) and data[pos:pos + 1] not in (b"\n", b"\r"):
                pos += 1
            continue
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise CommandError(f"{path}: bad PGM/PPM header; write it as binary P5/P6 with width, height, maxval")
        fields.append(int(data[start:pos]))
    width, height, maxval = fields
    channels = 1 if magic == b"P5" else 3
    if not 0 < maxval <= 255:
        raise CommandError(f"{path}: maxval {maxval}; only 8-bit PGM/PPM files are supported, convert it")
    pixels = np.frombuffer(data, np.uint8, width * height * channels, pos + 1) if (
        len(data) - pos - 1 >= width * height * channels) else None
    if pixels is None:
        raise CommandError(f"{path}: truncated ({len(data) - pos - 1} of {width * height * channels} pixel bytes)")
    image = pixels.reshape(height, width, channels)
    if maxval != 255:
        image = ((image.astype(np.uint32) * 255 + maxval // 2) // maxval).astype(np.uint8)
    return image


def read_image(path: Path) -> np.ndarray:
    """H x W x 1 (gray) or H x W x 3 (RGB) uint8 pixels of a binary PGM/PPM or a PNG file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"image {path} does not exist; pass existing image files") from None
    except OSError as error:
        raise CommandError(f"cannot read image {path} ({error.strerror}); check the file") from None
    if data[:2] in (b"P5", b"P6"):
        return _pnm(data, path)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        import io

        import matplotlib.image

        try:
            pixels = matplotlib.image.imread(io.BytesIO(data), format="png")
        except Exception as error:  # Pillow's errors for a broken file
            raise CommandError(f"{path} is not a readable PNG ({error}); re-export it") from None
        if pixels.dtype != np.uint8:  # matplotlib gives 0..1 floats for PNG
            pixels = np.round(np.asarray(pixels, np.float64) * 255).astype(np.uint8)
        if pixels.ndim == 2:
            pixels = pixels[:, :, None]
        elif pixels.shape[2] == 4:
            pixels = pixels[:, :, :3]  # alpha dropped: a camera has none
        elif pixels.shape[2] == 2:
            pixels = pixels[:, :, :1]
        return np.ascontiguousarray(pixels)
    raise CommandError(f"{path} is not a binary PGM (P5), PPM (P6) or PNG file; convert it to one of those")


def to_gray(image: np.ndarray) -> np.ndarray:
    """H x W x 1 uint8: gray kept, RGB through the camera's integer BT.601 luma."""
    if image.shape[2] == 1:
        return image
    rgb = image.astype(np.uint32)
    return ((77 * rgb[:, :, 0] + 150 * rgb[:, :, 1] + 29 * rgb[:, :, 2] + 128) >> 8).astype(np.uint8)[:, :, None]


def write_pnm(path: Path, image: np.ndarray) -> None:
    """A binary PGM (H x W or H x W x 1) or PPM (H x W x 3) file of uint8 pixels."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    h, w, c = image.shape
    magic = {1: b"P5", 3: b"P6"}[c]
    path.write_bytes(magic + b"\n%d %d\n255\n" % (w, h) + np.ascontiguousarray(image).tobytes())


PREPROCESS_SCRIPT = """\
import sys, tinysense_image as ti
index, pixels_path, out_path, dw, dh, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), \\
    int(sys.argv[5]), sys.argv[6]
normalize = None if mode == "none" else mode
dst = bytearray(dw * dh)
with open(index) as f:
    sizes = [[int(v) for v in line.split()] for line in f.read().split("\\n") if line]
with open(pixels_path, "rb") as f, open(out_path, "wb") as g:
    for w, h in sizes:
        src = f.read(w * h)
        ti.preprocess(src, ti.GRAYSCALE, w, h, dst, dw, dh, normalize=normalize)
        g.write(dst)
"""


def preprocess_on_host(images: Sequence[np.ndarray], width: int, height: int, normalize: str | None = None,
                       *, variant: str = "standard") -> np.ndarray:
    """N x height x width x 1 uint8: each gray image (H x W x 1, any size) through the device's preprocessing
    (tinysense_image.preprocess: exact area resampling, then the optional normalisation), in one firmware process."""
    with tempfile.TemporaryDirectory(prefix="tinysense-img-") as tmp:
        d = Path(tmp)
        (d / "index.txt").write_text("".join(f"{im.shape[1]} {im.shape[0]}\n" for im in images))
        (d / "pixels.bin").write_bytes(b"".join(np.ascontiguousarray(to_gray(im)).tobytes() for im in images))
        (d / "run.py").write_text(PREPROCESS_SCRIPT)
        proc = host.run([str(d / "run.py"), str(d / "index.txt"), str(d / "pixels.bin"), str(d / "out.bin"),
                         str(width), str(height), normalize or "none"], variant=variant, timeout=600)
        if proc.returncode != 0:
            raise CommandError(f"the device preprocessing failed in the host firmware: "
                               f"{proc.stderr.decode(errors='replace').strip().splitlines()[-1:]}; check the images")
        out = np.frombuffer((d / "out.bin").read_bytes(), np.uint8)
    return out.reshape(len(images), height, width, 1)
