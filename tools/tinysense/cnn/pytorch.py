"""PyTorch nn.Module -> float CNN `Model` (CPU torch; imported only when converting from PyTorch).

Every module, an nn.Sequential as much as one with residual blocks, is traced with torch.fx and translated by
tinysense.cnn.fx (one translation of PyTorch's layers; the supported modules are listed there). The device works in
H x W x C: convolution weights are transposed, and a Linear after a Flatten of a C x H x W tensor has its columns
permuted to H x W x C order.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinysense.cnn.graph import UnsupportedModel  # one error type for every converter
from tinysense.cnn.model import Model

__all__ = ["UnsupportedModel", "from_torch", "torch_forward"]


def from_torch(module: Any, input_shape: tuple[int, int, int], *, in_scale: float = 1.0 / 255.0,
               in_offset: float = 0.0) -> Model:
    """The float32 model of a module taking N x C x H x W input of `input_shape` (H, W, C). Every module, an
    nn.Sequential as much as one with residual blocks, goes through its torch.fx graph (tinysense.cnn.fx), so
    there is one translation of PyTorch's layers."""
    from tinysense.cnn.fx import from_fx

    return from_fx(module, input_shape, in_scale=in_scale, in_offset=in_offset)


def torch_forward(module: Any, model: Model, images: np.ndarray) -> np.ndarray:
    """PyTorch's outputs (float64, N x outputs) on uint8 images, fed as the device feeds its network."""
    import torch

    from tinysense.cnn.reference import float_input

    x = torch.from_numpy(float_input(model, images).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        return module.eval()(x).double().numpy().reshape(len(images), -1)
