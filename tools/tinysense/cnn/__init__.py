"""CNN models for the device's `emlearn_cnn` module: PyTorch converter, int8 quantisation, file format and the
NumPy integer reference (the golden model of the C engine).

    float_model = cnn.from_torch(net, (8, 8, 1))                     # nn.Module -> Model (float32)
    float_model = cnn.from_onnx("model.onnx")                         # ONNX file -> Model (float32)
    int8_model = cnn.quantize(float_model, calibration_images)      # per-channel int8, calibrated
    data = cnn.write(int8_model)                                      # bytes for emlearn_cnn.new()
    cnn.reference.run(int8_model, images)                             # what the device outputs, bit for bit
    cnn.run_on_host(data, images)                                     # the C engine in the host firmware
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import host
from tinysense.cnn import reference
from tinysense.cnn.model import FLOAT32, INT8, Layer, Model, ModelFormatError, arena_size, read, write
from tinysense.cnn.quantize import quantize

RUN_SCRIPT = """\
import sys, array, emlearn_cnn
model_path, images_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(model_path, 'rb') as f:
    m = emlearn_cnn.new(f.read())
n_in = 1
for d in m.input_shape():
    n_in *= d
n_out = 1
for d in m.output_dimensions():
    n_out *= d
out = array.array('f', bytes(4 * n_out))
with open(images_path, 'rb') as f, open(out_path, 'wb') as g:
    while True:
        img = f.read(n_in)
        if not img:
            break
        m.run(img, out)
        g.write(out)
"""


def from_torch(module: Any, input_shape: tuple[int, int, int], **kwargs: Any) -> Model:
    from tinysense.cnn.pytorch import from_torch as convert

    return convert(module, input_shape, **kwargs)


def from_onnx(source: Any, input_shape: tuple[int, int, int] | None = None, **kwargs: Any) -> Model:
    from tinysense.cnn.onnx import from_onnx as convert

    return convert(source, input_shape, **kwargs)


def run_on_host(data: bytes, images: np.ndarray, *, variant: str = "standard") -> np.ndarray:
    """The C engine's outputs (float32, N x outputs) for uint8 images N x H x W x C, in one firmware process."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="tinysense-cnn-") as tmp:
        d = Path(tmp)
        (d / "model.bin").write_bytes(data)
        (d / "images.bin").write_bytes(images.tobytes())
        (d / "run.py").write_text(RUN_SCRIPT)
        proc = host.run([str(d / "run.py"), str(d / "model.bin"), str(d / "images.bin"), str(d / "out.bin")],
                        variant=variant, timeout=600)
        report = host.sanitizer_report(proc.stderr.decode(errors="replace"))
        if proc.returncode != 0 or report:
            raise RuntimeError(f"host firmware failed ({proc.returncode}):\n{report or proc.stderr.decode()}")
        out = np.frombuffer((d / "out.bin").read_bytes(), dtype="<f4")
    return out.reshape(len(images), -1)


__all__ = ["FLOAT32", "INT8", "Layer", "Model", "ModelFormatError", "arena_size", "from_onnx", "from_torch", "quantize",
           "read", "reference", "run_on_host", "write"]
