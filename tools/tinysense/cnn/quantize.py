"""Post-training int8 quantisation of a float CNN `Model` (TFLite's scheme), calibrated on representative images.

- Activations: asymmetric int8, scale = (max - min) / 255 over the calibration outputs of each weighted layer
  (the range always includes 0), zero point = round(-128 - min / scale). Pooling, flatten and softmax keep their
  input's quantisation. The input: q = pixel - 128, so scale = in_scale, zero point = -128 - in_offset / in_scale
  (in_offset must be a whole number of in_scale steps).
- Weights: per output channel, symmetric, scale = max|w| / 127, q = round(w / scale) in -127..127.
- Biases: int32 at input_scale * weight_scale[c].
- add (TFLite's ADD): the output is calibrated like a weighted layer; both inputs are rescaled to twice the larger
  input scale (after a 20-bit left shift): M1 = s1 / (2 max(s1, s2)), M2 likewise, M_out = 2 max(s1, s2) /
  (2^20 s_out).
- Requantisation: input_scale * weight_scale[c] / output_scale = M * 2^-s with an int32 M (Q31) and a right shift
  s in 1..62; see usermods/emlearn_cnn/cnn.h for the single-rounding arithmetic.
"""

from __future__ import annotations

import numpy as np

from tinysense.cnn import reference
from tinysense.cnn.model import (
    ACT_RELU,
    ACT_RELU6,
    ADD,
    ADD_LEFT_SHIFT,
    DEPTHWISE,
    FLOAT32,
    INT8,
    WEIGHTED,
    Model,
)


def multiplier(scale: float) -> tuple[int, int]:
    """(M, s) with scale ~= M * 2^-s, 0 <= M < 2^31, 1 <= s <= 62."""
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"bad requantisation scale {scale}")
    if scale == 0:
        return 0, 1
    mantissa, exponent = np.frexp(scale)           # scale = mantissa * 2^exponent, mantissa in [0.5, 1)
    m = int(round(float(mantissa) * 2**31))
    if m == 2**31:
        m //= 2
        exponent += 1
    shift = 31 - int(exponent)
    if shift < 1:
        raise ValueError(f"requantisation scale {scale} is too large (>= 2^30)")
    if shift > 62:                                  # tiny scale: keep what precision a 62-bit shift allows
        m = int(round(scale * 2.0**62))
        shift = 62
    return m, shift


def _act_range(act: int, scale: float, zp: int) -> tuple[int, int]:
    lo, hi = -128, 127
    if act in (ACT_RELU, ACT_RELU6):
        lo = max(lo, zp)
    if act == ACT_RELU6:
        hi = min(hi, zp + int(round(6.0 / scale)))
    return lo, max(lo, hi)


def quantize(model: Model, calibration: np.ndarray) -> Model:
    """The int8 model of a float32 `model`, its activation ranges measured on `calibration` (uint8 images)."""
    if model.dtype != FLOAT32:
        raise ValueError("quantize() takes a float32 model")
    if len(calibration) == 0:
        raise ValueError("calibration needs at least one image")
    in_steps = model.in_offset / model.in_scale
    in_zp = -128 - int(round(in_steps))
    if abs(in_steps - round(in_steps)) > 1e-3 or not -128 <= in_zp <= 127:
        raise ValueError(f"in_offset {model.in_offset} must be a whole number of in_scale steps within int8")
    tensors = reference.float_tensors(model, calibration)
    q = model.copy()
    q.dtype = INT8
    q.scales = []
    quant = [(float(model.in_scale), in_zp)]   # (scale, zero point) of every tensor
    for i, layer in enumerate(q.layers):
        scale, zp = quant[q.source(i)]
        layer.in_zp = zp
        if layer.type in (*WEIGHTED, ADD):
            out = tensors[i + 1]
            lo, hi = min(0.0, float(out.min())), max(0.0, float(out.max()))
            out_scale = max(hi - lo, 1e-6) / 255.0
            out_zp = int(np.clip(round(-128 - lo / out_scale), -128, 127))
        if layer.type == ADD:
            assert layer.src2 is not None
            scale2 = quant[layer.src2][0]
            common = 2.0 * max(scale, scale2)
            pairs = [multiplier(scale / common), multiplier(scale2 / common),
                     multiplier(common / (2**ADD_LEFT_SHIFT * out_scale))]
            layer.mult = np.array([m for m, _ in pairs], dtype=np.int32)
            layer.shift = np.array([s for _, s in pairs], dtype=np.int32)
            scale, zp = out_scale, out_zp
        elif layer.type in WEIGHTED:
            w = np.asarray(layer.weights, dtype=np.float64)
            # per output channel: conv2d O x KH x KW x I and dense O x I on axis 0, depthwise KH x KW x C on the last
            axes = tuple(range(w.ndim - 1)) if layer.type == DEPTHWISE else tuple(range(1, w.ndim))
            w_scale = np.abs(w).max(axis=axes) / 127.0
            w_scale = np.where(w_scale > 0, w_scale, 1.0)
            shape = (1,) * (w.ndim - 1) + (-1,) if layer.type == DEPTHWISE else (-1,) + (1,) * (w.ndim - 1)
            layer.weights = np.clip(np.round(w / w_scale.reshape(shape)), -127, 127).astype(np.int8)
            bias = np.round(np.asarray(layer.bias, dtype=np.float64) / (scale * w_scale))
            layer.bias = np.clip(bias, -(2**31), 2**31 - 1).astype(np.int32)
            pairs = [multiplier(scale * ws / out_scale) for ws in w_scale]
            layer.mult = np.array([m for m, _ in pairs], dtype=np.int32)
            layer.shift = np.array([s for _, s in pairs], dtype=np.int32)
            scale, zp = out_scale, out_zp
        layer.out_zp = zp
        layer.act_min, layer.act_max = _act_range(layer.act, scale, zp)
        q.scales.append(scale)
        quant.append((scale, zp))
    q.out_scale, q.out_zp = scale, zp
    return q

