"""PyTorch `nn.Sequential` -> float CNN `Model` (CPU torch; imported only when converting from PyTorch).

Supported modules, in order: Conv2d (groups 1, or depthwise groups == in == out channels; kernel <= 5, stride,
padding 'same' / 'valid' / an integer < kernel, no dilation, zero padding mode), BatchNorm2d right after a
convolution (folded into it), ReLU / ReLU6 (fused into the layer before), MaxPool2d, AvgPool2d (no ceil_mode,
padding only with count_include_pad=False), AdaptiveAvgPool2d(1), Flatten, Linear, Softmax (last), and
Dropout / Identity (skipped). The device works in H x W x C: convolution weights are transposed, and a Linear after
a Flatten of a C x H x W tensor has its columns permuted to H x W x C order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysense.cnn.graph import UnsupportedModel  # one error type for every converter
from tinysense.cnn.model import (
    ACT_NONE,
    ACT_RELU,
    ACT_RELU6,
    AVGPOOL,
    CONV2D,
    DENSE,
    DEPTHWISE,
    FLATTEN,
    FLOAT32,
    GLOBAL_AVGPOOL,
    MAX_DIM,
    MAX_KERNEL,
    MAXPOOL,
    SOFTMAX,
    Layer,
    Model,
)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _np(t: Any) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _out(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def from_torch(module: Any, input_shape: tuple[int, int, int], *, in_scale: float = 1.0 / 255.0,
               in_offset: float = 0.0) -> Model:
    """The float32 model of a module taking N x C x H x W input of `input_shape` (H, W, C): an nn.Sequential here,
    any other nn.Module (residual blocks) through its torch.fx graph (tinysense.cnn.fx)."""
    import torch.nn as nn

    if not isinstance(module, nn.Sequential):
        from tinysense.cnn.fx import from_fx

        return from_fx(module, input_shape, in_scale=in_scale, in_offset=in_offset)
    module = module.eval()
    h, w, c = input_shape
    layers: list[Layer] = []
    flat_from: tuple[int, int, int] | None = None   # (h, w, c) before a Flatten of a non-1x1 tensor
    for index, m in enumerate(module):
        where = f"module {index} ({type(m).__name__})"
        if isinstance(m, (nn.Dropout, nn.Identity)):
            continue
        if isinstance(m, nn.Conv2d):
            k = _pair(m.kernel_size)
            s = _pair(m.stride)
            if _pair(m.dilation) != (1, 1) or m.padding_mode != "zeros":
                raise UnsupportedModel(f"{where}: dilation and non-zero padding modes are not supported")
            if max(k) > MAX_KERNEL:
                raise UnsupportedModel(f"{where}: kernel {k} is larger than {MAX_KERNEL}x{MAX_KERNEL}")
            if m.padding == "same":
                p = ((k[0] - 1) // 2, (k[1] - 1) // 2)
                oh, ow = h, w
            elif m.padding == "valid":
                p = (0, 0)
                oh, ow = _out(h, k[0], s[0], 0), _out(w, k[1], s[1], 0)
            else:
                p = _pair(m.padding)
                oh, ow = _out(h, k[0], s[0], p[0]), _out(w, k[1], s[1], p[1])
            if p[0] >= k[0] or p[1] >= k[1]:
                raise UnsupportedModel(f"{where}: padding {p} must be smaller than the kernel {k}")
            weight = _np(m.weight)
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels)
            if m.groups == 1:
                kind, wt = CONV2D, weight.transpose(0, 2, 3, 1)               # O x KH x KW x I
            elif m.groups == m.in_channels == m.out_channels:
                kind, wt = DEPTHWISE, weight[:, 0].transpose(1, 2, 0)         # KH x KW x C
            else:
                raise UnsupportedModel(f"{where}: groups={m.groups} (only 1 or depthwise)")
            if m.in_channels != c:
                raise UnsupportedModel(f"{where}: {m.in_channels} input channels, the tensor has {c}")
            c = m.out_channels
            layers.append(Layer(kind, (oh, ow, c), kernel=k, stride=s, pad=p, weights=wt, bias=bias))
        elif isinstance(m, nn.BatchNorm2d):
            last = layers[-1] if layers else None
            if last is None or last.type not in (CONV2D, DEPTHWISE) or last.act != ACT_NONE:
                raise UnsupportedModel(f"{where}: BatchNorm2d must follow a convolution directly")
            if not m.track_running_stats or m.running_mean is None:
                raise UnsupportedModel(f"{where}: BatchNorm2d without running statistics")
            gamma = _np(m.weight) if m.affine else np.ones(c)
            beta = _np(m.bias) if m.affine else np.zeros(c)
            factor = gamma / np.sqrt(_np(m.running_var) + m.eps)
            assert last.weights is not None and last.bias is not None
            last.weights = last.weights * (factor if last.type == DEPTHWISE else factor[:, None, None, None])
            last.bias = (last.bias - _np(m.running_mean)) * factor + beta
        elif isinstance(m, (nn.ReLU, nn.ReLU6)):
            act = ACT_RELU6 if isinstance(m, nn.ReLU6) else ACT_RELU
            target = next((layer for layer in reversed(layers) if layer.type != FLATTEN), None)
            if target is None or target.type == SOFTMAX or target.act != ACT_NONE:
                raise UnsupportedModel(f"{where}: no layer to fuse the activation into")
            target.act = act
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            k = _pair(m.kernel_size)
            s = _pair(m.stride if m.stride is not None else m.kernel_size)
            p = _pair(m.padding)
            if m.ceil_mode:
                raise UnsupportedModel(f"{where}: ceil_mode is not supported")
            if isinstance(m, nn.MaxPool2d) and (_pair(m.dilation) != (1, 1) or m.return_indices):
                raise UnsupportedModel(f"{where}: dilation/return_indices are not supported")
            if isinstance(m, nn.AvgPool2d) and (m.divisor_override or (p != (0, 0) and m.count_include_pad)):
                raise UnsupportedModel(f"{where}: padding needs count_include_pad=False; no divisor_override")
            if p[0] >= k[0] or p[1] >= k[1]:
                raise UnsupportedModel(f"{where}: padding {p} must be smaller than the kernel {k}")
            kind = MAXPOOL if isinstance(m, nn.MaxPool2d) else AVGPOOL
            h, w = _out(h, k[0], s[0], p[0]), _out(w, k[1], s[1], p[1])
            layers.append(Layer(kind, (h, w, c), kernel=k, stride=s, pad=p))
            continue
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            if _pair(m.output_size) != (1, 1):
                raise UnsupportedModel(f"{where}: only AdaptiveAvgPool2d(1) (global average pooling)")
            h, w = 1, 1
            layers.append(Layer(GLOBAL_AVGPOOL, (1, 1, c)))
            continue
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise UnsupportedModel(f"{where}: only Flatten(1, -1)")
            if (h, w) != (1, 1):
                flat_from = (h, w, c)
            h, w, c = 1, 1, h * w * c
            layers.append(Layer(FLATTEN, (1, 1, c)))
            continue
        elif isinstance(m, nn.Linear):
            if (h, w) != (1, 1) or m.in_features != c:
                raise UnsupportedModel(f"{where}: Linear needs a flat input of {m.in_features}, got {h}x{w}x{c}")
            weight = _np(m.weight)
            if flat_from is not None:   # PyTorch flattened C x H x W; the device's tensor is H x W x C
                fh, fw, fc = flat_from
                weight = weight.reshape(-1, fc, fh, fw).transpose(0, 2, 3, 1).reshape(len(weight), -1)
                flat_from = None
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            c = m.out_features
            layers.append(Layer(DENSE, (1, 1, c), weights=weight, bias=bias))
        elif isinstance(m, nn.Softmax):
            if index != len(module) - 1 or (h, w) != (1, 1) or m.dim not in (1, -1):
                raise UnsupportedModel(f"{where}: Softmax must be the last module, over a flat tensor")
            layers.append(Layer(SOFTMAX, (1, 1, c)))
        else:
            raise UnsupportedModel(f"{where} is not supported")
        if layers and layers[-1].type in (CONV2D, DEPTHWISE):
            h, w = layers[-1].out_shape[:2]
        if min(h, w) < 1 or max(h, w, c) > MAX_DIM:
            raise UnsupportedModel(f"{where}: output {h}x{w}x{c} out of range")
    if not layers:
        raise UnsupportedModel("no layers")
    for layer in layers:
        if layer.weights is not None:
            layer.weights = np.ascontiguousarray(layer.weights, dtype=np.float32)
            layer.bias = np.ascontiguousarray(layer.bias, dtype=np.float32)
    return Model(FLOAT32, tuple(input_shape), layers,  # type: ignore[arg-type]
                 in_scale=in_scale, in_offset=in_offset)


def torch_forward(module: Any, model: Model, images: np.ndarray) -> np.ndarray:
    """PyTorch's outputs (float64, N x outputs) on uint8 images, fed as the device feeds its network."""
    import torch

    from tinysense.cnn.reference import float_input

    x = torch.from_numpy(float_input(model, images).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        return module.eval()(x).double().numpy().reshape(len(images), -1)
