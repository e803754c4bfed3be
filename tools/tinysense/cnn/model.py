"""The CNN model in memory (`Model`, `Layer`) and its file format for the device's `emlearn_cnn` module.

Tensors are H x W x C. Weights are kept in the device's layouts: conv2d O x KH x KW x I, depthwise KH x KW x C,
dense O x I (inputs flattened H x W x C). The byte layout is documented in usermods/emlearn_cnn/cnn.h;
`write` and `read` are its only implementation on the PC side.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

MAGIC = b"TSCN"
FORMAT_VERSION = 1
HEADER = struct.Struct("<4sBBBBIIIHHHHfffiI")   # 48 bytes
LAYER = struct.Struct("<BBBBBBBBHHHHIIbbbbI")   # 32 bytes
ALIGN = 16
MAX_LAYERS = 64
MAX_DIM = 2048
MAX_KERNEL = 5

FLOAT32, INT8 = 1, 2
CONV2D, DEPTHWISE, MAXPOOL, AVGPOOL, GLOBAL_AVGPOOL, DENSE, FLATTEN, SOFTMAX = 1, 2, 3, 4, 5, 6, 7, 8
LAYER_NAMES = {CONV2D: "conv2d", DEPTHWISE: "depthwise", MAXPOOL: "maxpool", AVGPOOL: "avgpool",
               GLOBAL_AVGPOOL: "global_avgpool", DENSE: "dense", FLATTEN: "flatten", SOFTMAX: "softmax"}
ACT_NONE, ACT_RELU, ACT_RELU6 = 0, 1, 2
WEIGHTED = (CONV2D, DEPTHWISE, DENSE)


class ModelFormatError(ValueError):
    pass


@dataclass
class Layer:
    type: int
    out_shape: tuple[int, int, int]
    act: int = ACT_NONE
    kernel: tuple[int, int] = (0, 0)
    stride: tuple[int, int] = (0, 0)
    pad: tuple[int, int] = (0, 0)             # top, left (bottom/right follow from the output size)
    weights: np.ndarray | None = None          # float32 (float model) or int8 (int8 model), device layout
    bias: np.ndarray | None = None             # float32 or int32
    mult: np.ndarray | None = None             # int32 per output channel (int8)
    shift: np.ndarray | None = None            # int32 per output channel (int8)
    in_zp: int = 0
    out_zp: int = 0
    act_min: int = 0
    act_max: int = 0

    @property
    def name(self) -> str:
        return LAYER_NAMES.get(self.type, f"type {self.type}")


@dataclass
class Model:
    dtype: int
    input_shape: tuple[int, int, int]
    layers: list[Layer]
    in_scale: float = 1.0 / 255.0
    in_offset: float = 0.0
    out_scale: float = 1.0
    out_zp: int = 0
    # Not in the file: per-layer output quantisation (scale) of an int8 model, for reports.
    scales: list[float] = field(default_factory=list)

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return self.layers[-1].out_shape

    def copy(self) -> Model:
        return replace(self, layers=[replace(layer) for layer in self.layers], scales=list(self.scales))


def _tensor_bytes(values: int, dtype: int) -> int:
    size = values * (1 if dtype == INT8 else 4)
    return (size + ALIGN - 1) // ALIGN * ALIGN


def arena_size(model: Model) -> int:
    """Bytes of the device's activation arena: two halves, each the largest tensor (16-byte rounded)."""
    sizes = [int(np.prod(model.input_shape))] + [int(np.prod(layer.out_shape)) for layer in model.layers]
    return 2 * max(_tensor_bytes(n, model.dtype) for n in sizes)


def _params(layer: Layer, dtype: int) -> bytes:
    if layer.type not in WEIGHTED:
        return b""
    assert layer.weights is not None and layer.bias is not None
    if dtype == FLOAT32:
        return (np.ascontiguousarray(layer.weights, "<f4").tobytes()
                + np.ascontiguousarray(layer.bias, "<f4").tobytes())
    assert layer.mult is not None and layer.shift is not None
    w = np.ascontiguousarray(layer.weights, np.int8).tobytes()
    w += bytes(-len(w) % 4)
    return w + b"".join(np.ascontiguousarray(a, "<i4").tobytes() for a in (layer.bias, layer.mult, layer.shift))


def write(model: Model) -> bytes:
    """The model file (bytes) for emlearn_cnn.new()."""
    if not 1 <= len(model.layers) <= MAX_LAYERS:
        raise ValueError(f"{len(model.layers)} layers: the device supports 1 to {MAX_LAYERS}")
    offset = HEADER.size + LAYER.size * len(model.layers)
    table, blobs = b"", b""
    for layer in model.layers:
        params = _params(layer, model.dtype)
        where = 0
        if params:
            offset += -offset % ALIGN
            blobs += bytes(offset - HEADER.size - LAYER.size * len(model.layers) - len(blobs))
            where = offset
            blobs += params
            offset += len(params)
        q = model.dtype == INT8
        table += LAYER.pack(layer.type, layer.act, *layer.kernel, *layer.stride, *layer.pad, *layer.out_shape, 0,
                            where, len(params), layer.in_zp if q else 0, layer.out_zp if q else 0,
                            layer.act_min if q else 0, layer.act_max if q else 0, 0)
    body = table + blobs
    body += bytes(-(HEADER.size + len(body)) % 4)
    length = HEADER.size + len(body)
    h, w, c = model.input_shape
    fields = [MAGIC, FORMAT_VERSION, model.dtype, len(model.layers), 0, 0, length, arena_size(model), h, w, c, 0,
              model.in_scale, model.in_offset, model.out_scale, model.out_zp if model.dtype == INT8 else 0, 0]
    header = HEADER.pack(*fields)
    crc = zlib.crc32(body, zlib.crc32(header[12:48], zlib.crc32(header[:8])))
    fields[5] = crc
    return HEADER.pack(*fields) + body


def read(data: bytes) -> Model:
    """Parse a model file written by `write` (checks the magic, version, length and CRC; not every rule the
    device checks)."""
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise ModelFormatError("not a cnn model (magic or header)")
    (_, version, dtype, n_layers, _, crc, length, _arena, h, w, c, _, in_scale, in_offset, out_scale, out_zp,
     _) = HEADER.unpack_from(data)
    if version != FORMAT_VERSION or length != len(data):
        raise ModelFormatError(f"version {version} or length {length} (file {len(data)} bytes) not supported")
    if zlib.crc32(data[12:], zlib.crc32(data[:8])) != crc:
        raise ModelFormatError("CRC32 mismatch")
    layers = []
    for i in range(n_layers):
        (kind, act, kh, kw, sh, sw, pt, pl, oh, ow, oc, _, where, size, in_zp, o_zp, amin, amax,
         _) = LAYER.unpack_from(data, HEADER.size + i * LAYER.size)
        layer = Layer(kind, (oh, ow, oc), act, (kh, kw), (sh, sw), (pt, pl), in_zp=in_zp, out_zp=o_zp,
                      act_min=amin, act_max=amax)
        if kind in WEIGHTED:
            ih, iw, ic = layers[-1].out_shape if layers else (h, w, c)
            n_w = {CONV2D: oc * kh * kw * ic, DEPTHWISE: kh * kw * oc, DENSE: oc * ih * iw * ic}[kind]
            shape = {CONV2D: (oc, kh, kw, ic), DEPTHWISE: (kh, kw, oc), DENSE: (oc, ih * iw * ic)}[kind]
            blob = data[where:where + size]
            if dtype == FLOAT32:
                values = np.frombuffer(blob, "<f4")
                layer.weights, layer.bias = values[:n_w].reshape(shape), values[n_w:n_w + oc]
            else:
                layer.weights = np.frombuffer(blob, np.int8, n_w).reshape(shape)
                rest = np.frombuffer(blob, "<i4", 3 * oc, (n_w + 3) // 4 * 4)
                layer.bias, layer.mult, layer.shift = rest[:oc], rest[oc:2 * oc], rest[2 * oc:]
        layers.append(layer)
    return Model(dtype, (h, w, c), layers, in_scale, in_offset, out_scale, out_zp)
