"""NumPy references of emlearn_cnn: the integer arithmetic of an int8 model, bit for bit (the golden model the C
engine is tested against), and float inference of a float32 model (float64 here, for calibration and checks).

Both take a batch of uint8 images N x H x W x C and return N x outputs float arrays, as `Model.run` does on the
device. The int8 arithmetic (see usermods/emlearn_cnn/cnn.h): q_in = pixel - 128; a weighted layer computes
acc = bias + sum(w * (x - in_zp)) in integers, saturates it to int32 and requantises it with one rounding,
((acc * M + 2^(s-1)) >> s) + out_zp (floor shift: half-way cases go towards +infinity), clamped to the fused
activation's range; average pooling rounds half away from zero; the output is float32((q - out_zp)) * out_scale
in float32, followed by a float32 softmax where the model ends with one. An add rescales both inputs (shifted
left by 20 bits) with their own (M, s), sums them and requantises the sum with the output's (M, s).
"""

from __future__ import annotations

import numpy as np

from tinysense.cnn.model import (
    ACT_RELU,
    ACT_RELU6,
    ADD,
    ADD_LEFT_SHIFT,
    AVGPOOL,
    CONV2D,
    DENSE,
    DEPTHWISE,
    FLATTEN,
    FLOAT32,
    GLOBAL_AVGPOOL,
    INT8,
    MAXPOOL,
    SOFTMAX,
    Layer,
    Model,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _windows(x: np.ndarray, layer: Layer, fill: float | int):
    """Yield (ky, kx, patch, valid): patch N x oh x ow x C of the padded input at kernel offset (ky, kx); valid
    oh x ow x 1 marks positions inside the input (padding is skipped by the device)."""
    n, h, w, c = x.shape
    oh, ow, _ = layer.out_shape
    if layer.type == GLOBAL_AVGPOOL:
        (kh, kw), (sh, sw), (pt, pl) = (h, w), (1, 1), (0, 0)
    else:
        (kh, kw), (sh, sw), (pt, pl) = layer.kernel, layer.stride, layer.pad
    pb = max(0, (oh - 1) * sh + kh - h - pt)
    pr = max(0, (ow - 1) * sw + kw - w - pl)
    xp = np.full((n, h + pt + pb, w + pl + pr, c), fill, dtype=x.dtype)
    xp[:, pt:pt + h, pl:pl + w] = x
    mask = np.zeros((h + pt + pb, w + pl + pr, 1), dtype=bool)
    mask[pt:pt + h, pl:pl + w] = True
    for ky in range(kh):
        for kx in range(kw):
            sl = (slice(ky, ky + (oh - 1) * sh + 1, sh), slice(kx, kx + (ow - 1) * sw + 1, sw))
            yield ky, kx, xp[(slice(None), *sl)], mask[sl]


# ---- int8 ----

def _requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, layer: Layer) -> np.ndarray:
    acc = np.clip(acc.astype(np.int64), INT32_MIN, INT32_MAX)
    mult = mult.astype(np.int64)
    shift = shift.astype(np.int64)
    v = ((acc * mult + (np.int64(1) << (shift - 1))) >> shift) + layer.out_zp
    return np.clip(v, layer.act_min, layer.act_max).astype(np.int8)


def _rescale(v: np.ndarray, mult: int, shift: int) -> np.ndarray:
    return (v * np.int64(mult) + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)


def _add_int8(layer: Layer, x1: np.ndarray, x2: np.ndarray, zp2: int) -> np.ndarray:
    assert layer.mult is not None and layer.shift is not None
    m, s = [int(v) for v in layer.mult], [int(v) for v in layer.shift]
    a = _rescale((x1.astype(np.int64) - layer.in_zp) << ADD_LEFT_SHIFT, m[0], s[0])
    b = _rescale((x2.astype(np.int64) - zp2) << ADD_LEFT_SHIFT, m[1], s[1])
    return _requantize(a + b, layer.mult[2:3], layer.shift[2:3], layer)


def _layer_int8(layer: Layer, x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    if layer.type in (CONV2D, DEPTHWISE):
        assert layer.weights is not None and layer.bias is not None
        xz = x.astype(np.int64) - layer.in_zp
        w = layer.weights.astype(np.int64)
        acc = np.zeros((n, *layer.out_shape), dtype=np.int64)
        for ky, kx, patch, _ in _windows(xz, layer, 0):   # padding contributes 0 == skipped
            acc += patch @ w[:, ky, kx, :].T if layer.type == CONV2D else patch * w[ky, kx, :]
        return _requantize(acc + layer.bias.astype(np.int64), layer.mult, layer.shift, layer)
    if layer.type == DENSE:
        assert layer.weights is not None and layer.bias is not None
        xz = x.reshape(n, -1).astype(np.int64) - layer.in_zp
        acc = xz @ layer.weights.astype(np.int64).T + layer.bias.astype(np.int64)
        return _requantize(acc, layer.mult, layer.shift, layer).reshape(n, *layer.out_shape)
    if layer.type == MAXPOOL:
        out = np.full((n, *layer.out_shape), -128, dtype=np.int64)
        for _, _, patch, valid in _windows(x.astype(np.int64), layer, -128):
            out = np.where(valid, np.maximum(out, patch), out)
        return np.clip(out, layer.act_min, layer.act_max).astype(np.int8)
    if layer.type in (AVGPOOL, GLOBAL_AVGPOOL):
        total = np.zeros((n, *layer.out_shape), dtype=np.int64)
        count = np.zeros((*layer.out_shape[:2], 1), dtype=np.int64)
        for _, _, patch, valid in _windows(x.astype(np.int64), layer, 0):
            total += patch
            count += valid
        half = count // 2
        avg = np.where(total >= 0, (total + half) // count, -((-total + half) // count))
        return np.clip(avg, layer.act_min, layer.act_max).astype(np.int8)
    if layer.type in (FLATTEN, SOFTMAX):
        return x.reshape(n, *layer.out_shape)
    raise ValueError(f"unknown layer type {layer.type}")


def _softmax32(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float32)
    e = np.exp(z - z.max(axis=1, keepdims=True)).astype(np.float32)
    return (e / e.sum(axis=1, keepdims=True, dtype=np.float32)).astype(np.float32)


def int8_tensors(model: Model, images: np.ndarray) -> list[np.ndarray]:
    """The int8 input tensor and every layer's int8 output, N x H x W x C each."""
    if model.dtype != INT8:
        raise ValueError("not an int8 model")
    x = (_images(model, images).astype(np.int16) - 128).astype(np.int8)
    tensors = [x]
    zps = [model.layers[0].in_zp]
    for i, layer in enumerate(model.layers):
        x = tensors[model.source(i)]
        if layer.type == ADD:
            assert layer.src2 is not None
            tensors.append(_add_int8(layer, x, tensors[layer.src2], zps[layer.src2]))
        else:
            tensors.append(_layer_int8(layer, x))
        zps.append(layer.out_zp)
    return tensors


def run_int8(model: Model, images: np.ndarray) -> np.ndarray:
    """What the device's run() writes to out for every image (float32, bit for bit)."""
    q = int8_tensors(model, images)[-1].reshape(len(images), -1)
    out = (q.astype(np.int32) - model.out_zp).astype(np.float32) * np.float32(model.out_scale)
    return _softmax32(out) if model.layers[-1].type == SOFTMAX else out


# ---- float ----

def _act(v: np.ndarray, act: int) -> np.ndarray:
    if act in (ACT_RELU, ACT_RELU6):
        v = np.maximum(v, 0.0)
    if act == ACT_RELU6:
        v = np.minimum(v, 6.0)
    return v


def _layer_float(layer: Layer, x: np.ndarray, act: bool = True) -> np.ndarray:
    n = x.shape[0]
    if layer.type in (CONV2D, DEPTHWISE):
        assert layer.weights is not None and layer.bias is not None
        w = layer.weights.astype(np.float64)
        out = np.zeros((n, *layer.out_shape)) + layer.bias.astype(np.float64)
        for ky, kx, patch, _ in _windows(x, layer, 0.0):
            out += patch @ w[:, ky, kx, :].T if layer.type == CONV2D else patch * w[ky, kx, :]
    elif layer.type == DENSE:
        assert layer.weights is not None and layer.bias is not None
        out = (x.reshape(n, -1) @ layer.weights.astype(np.float64).T + layer.bias).reshape(n, *layer.out_shape)
    elif layer.type == MAXPOOL:
        out = np.full((n, *layer.out_shape), -np.inf)
        for _, _, patch, valid in _windows(x, layer, -np.inf):
            out = np.where(valid, np.maximum(out, patch), out)
    elif layer.type in (AVGPOOL, GLOBAL_AVGPOOL):
        out = np.zeros((n, *layer.out_shape))
        count = np.zeros((*layer.out_shape[:2], 1))
        for _, _, patch, valid in _windows(x, layer, 0.0):
            out += patch
            count += valid
        out = out / count
    elif layer.type == FLATTEN:
        return x.reshape(n, *layer.out_shape)
    elif layer.type == SOFTMAX:
        z = x.reshape(n, -1)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return (e / e.sum(axis=1, keepdims=True)).reshape(n, *layer.out_shape)
    else:
        raise ValueError(f"unknown layer type {layer.type}")
    return _act(out, layer.act) if act else out


def _images(model: Model, images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"images must be uint8, not {images.dtype}")
    h, w, c = model.input_shape
    return images.reshape(len(images), h, w, c)


def float_input(model: Model, images: np.ndarray) -> np.ndarray:
    """The network's float32 input as the device computes it: pixel * in_scale + in_offset (N x H x W x C)."""
    x = _images(model, images).astype(np.float32)
    return (x * np.float32(model.in_scale) + np.float32(model.in_offset)).astype(np.float32)


def float_tensors(model: Model, images: np.ndarray) -> list[np.ndarray]:
    """The float input and every layer's float64 output (fused activations applied) of a float model."""
    tensors = [float_input(model, images).astype(np.float64)]
    for i, layer in enumerate(model.layers):
        x = tensors[model.source(i)]
        if layer.type == ADD:
            assert layer.src2 is not None
            tensors.append(_act(x + tensors[layer.src2], layer.act))
        else:
            tensors.append(_layer_float(layer, x))
    return tensors


def run_float(model: Model, images: np.ndarray) -> np.ndarray:
    if model.dtype != FLOAT32:
        raise ValueError("not a float32 model")
    return float_tensors(model, images)[-1].reshape(len(images), -1)


def run(model: Model, images: np.ndarray) -> np.ndarray:
    """The device's outputs for a model of either dtype."""
    return run_int8(model, images) if model.dtype == INT8 else run_float(model, images)

