"""`tinysense convert` for CNNs: an ONNX file or a saved PyTorch module -> the emlearn_cnn file, with parity proven
by running the device module in the host firmware on the test set.

Inputs: model.onnx, a whole module saved with torch.save(module, "model.pt") (loaded with weights_only=False: only
load files you trust), or a TorchScript file (torch.jit.save; converted through the ONNX exporter). Images are uint8
N x H x W x C (N x H x W: one channel) in the test set's X_test; the calibration file's first array of X_calib, X,
X_train, images calibrates an int8 model.

Parity: int8 models equal the NumPy integer reference (tinysense.cnn.reference) bit for bit on every image; float32
models are within FLOAT_ATOL of the original framework's outputs (PyTorch or onnx.reference). The report also gives
how often the device's class (argmax) equals the framework's float one, and the accuracy against y_test.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import cnn
from tinysense.cnn.graph import UnsupportedModel
from tinysense.cnn.model import INT8, Model
from tinysense.conversion import Parity
from tinysense.errors import CommandError

SUFFIXES = (".onnx", ".pt", ".pth", ".ts")
OUTPUT_SUFFIX = ".cnn"
FLOAT_ATOL = 1e-4   # float32 device vs float32 framework, relative to max(1, |y|)
CALIBRATION_KEYS = ("X_calib", "X", "X_train", "images")


def is_network_file(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def images_from(path: Path, keys: tuple[str, ...], what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 N x H x W x C images (and y_test when present) from a .npz, or a CommandError saying what to pass."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            key = next((k for k in keys if k in npz.files), None)
            if key is None:
                raise CommandError(f"{what} {path} has none of the arrays {', '.join(keys)}; save the images "
                                   f"with np.savez(path, {keys[0]}=images)")
            x = np.asarray(npz[key])
            y = np.asarray(npz["y_test"]) if "y_test" in npz.files else None
    except FileNotFoundError:
        raise CommandError(f"{what} {path} does not exist") from None
    except (OSError, ValueError, EOFError) as error:
        raise CommandError(f"cannot read {what} {path} ({error}); pass a .npz of uint8 images") from None
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or len(x) == 0 or x.dtype != np.uint8:
        raise CommandError(f"{what} {path}: images of shape {x.shape} and dtype {x.dtype}; the device takes uint8 "
                           "images N x H x W x C (convert with .astype(np.uint8) from 0..255 pixels)")
    return x, y


def _is_torchscript(path: Path) -> bool:
    """torch.jit.save writes a zip with a code/ folder; torch.save's zip has none."""
    try:
        with zipfile.ZipFile(path) as z:
            return any("/code/" in name for name in z.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_network(path: Path, input_shape: tuple[int, int, int]) -> tuple[Model, Callable[[np.ndarray], np.ndarray],
                                                                        str]:
    """The float32 model, the framework's own forward (uint8 images -> N x outputs) and a description."""
    try:
        if path.suffix.lower() == ".onnx":
            from tinysense.cnn.onnx import from_onnx, reference_forward

            model = from_onnx(path, input_shape)
            return model, lambda x: np.concatenate([reference_forward(path, model, x[i:i + 64])
                                                    for i in range(0, len(x), 64)]), "ONNX"
        import torch

        from tinysense.cnn import pytorch as cnn_torch

        if _is_torchscript(path):   # TorchScript: torch.fx cannot trace it; its ONNX export can be read
            from tinysense.cnn.onnx import from_onnx

            buf = io.BytesIO()
            h, w, c = input_shape
            with warnings.catch_warnings():   # jit.load and the legacy exporter are deprecated, and still work
                warnings.simplefilter("ignore")
                scripted = torch.jit.load(str(path), map_location="cpu")
                torch.onnx.export(scripted, (torch.zeros(1, c, h, w),), buf, dynamo=False)
            model = from_onnx(buf.getvalue(), input_shape)
            return model, lambda x: cnn_torch.torch_forward(scripted, model, x), "TorchScript"
        module = torch.load(str(path), map_location="cpu", weights_only=False)
        if not isinstance(module, torch.nn.Module):
            raise CommandError(f"{path} holds a {type(module).__name__}, not a module: save the whole module with "
                               "torch.save(model, path) (a state_dict has no architecture), or export ONNX")
        model = cnn.from_torch(module, input_shape)
        return model, lambda x: cnn_torch.torch_forward(module, model, x), type(module).__name__
    except UnsupportedModel as error:
        raise CommandError(f"cannot convert {path}: {error}") from None
    except CommandError:
        raise
    except Exception as error:   # a corrupt or foreign file: onnx/torch raise many kinds
        raise CommandError(f"cannot read {path} ({type(error).__name__}: {error}); pass an ONNX file or a module "
                           "saved with torch.save") from None


def convert_network(path: Path, x_test: np.ndarray, y_test: np.ndarray | None, calibration: np.ndarray | None,
                    *, dtype: str = "int8", variant: str = "standard") -> tuple[bytes, Parity, str]:
    input_shape: tuple[int, int, int] = tuple(int(d) for d in x_test.shape[1:])  # type: ignore[assignment]
    float_model, forward, description = load_network(path, input_shape)
    if float_model.input_shape != input_shape:
        raise CommandError(f"{path} takes {float_model.input_shape} images (H x W x C), the test set has "
                           f"{input_shape}")
    framework = forward(x_test)
    if dtype == "int8":
        if calibration is None:
            raise CommandError("an int8 model needs --calibration FILE.npz (a few hundred representative images), "
                               "or pass --dtype float32")
        if calibration.shape[1:] != x_test.shape[1:]:
            raise CommandError(f"calibration images are {calibration.shape[1:]}, the test images {x_test.shape[1:]}")
        try:
            model = cnn.quantize(float_model, calibration)
        except ValueError as error:
            raise CommandError(f"cannot quantise {path}: {error}") from None
    else:
        model = float_model
    data = cnn.write(model)
    device = cnn.run_on_host(data, x_test, variant=variant)
    if model.dtype == INT8:
        expected = cnn.reference.run_int8(model, x_test)
        bad = np.any(device.view(np.uint32) != expected.view(np.uint32), axis=1)
        note = "int8 outputs equal the integer reference bit for bit"
        details: dict[str, Any] = {"dtype": "int8", "max_abs_diff_to_float": float(np.abs(device - framework).max())}
    else:
        diff = np.abs(device - framework) / np.maximum(1.0, np.abs(framework))
        bad = np.any(diff > FLOAT_ATOL, axis=1)
        note = f"float32 outputs within {float(diff.max()):.2g} of {description}'s (tolerance {FLOAT_ATOL:g})"
        details = {"dtype": "float32", "max_rel_diff": float(diff.max()), "atol": FLOAT_ATOL}
    classes = np.argmax(device, axis=1)
    details.update(network=description, layers=[layer.name for layer in model.layers],
                   arena_bytes=cnn.arena_size(model),
                   float_agreement=float(np.mean(classes == np.argmax(framework, axis=1))))
    accuracy = None if y_test is None else float(np.mean(classes.astype(str) == y_test.astype(str)))
    mismatches = [int(i) for i in np.flatnonzero(bad)]
    return data, Parity(len(x_test), len(x_test) - len(mismatches), mismatches, accuracy, details, note), description
