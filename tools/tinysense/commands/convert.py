"""`tinysense convert`: scikit-learn model → device model file, proven equal in the host firmware."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinysense import conversion
from tinysense.atomic import write_bytes_atomic
from tinysense.errors import CommandError

NAME = "convert"
HELP = ("convert a scikit-learn model (trees, k-NN, MLP; joblib/pickle) or a CNN (ONNX, torch.save'd module, "
        "TorchScript) to the device format and prove parity in the host firmware")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="scikit-learn model saved with joblib or pickle (model.joblib), or a "
                        "CNN: model.onnx, a module saved with torch.save (.pt/.pth) or TorchScript (.pt/.ts)")
    parser.add_argument("--test-set", type=Path,
                        help="a .npz with X_test (and y_test) to prove parity on (default: test.npz beside the model)")
    parser.add_argument("--output", "-o", type=Path,
                        help="device model file (default: the model's name + .trees, .knn or .mlp)")
    parser.add_argument("--report", type=Path, help="parity report, JSON (default: the output + .parity.json)")
    parser.add_argument("--features", choices=("auto", "int", "float"), default="auto",
                        help="trees and k-NN: int16 features as they are, or float (trees: a threshold table; k-NN: "
                             "quantised to int16 on the device). Default: what `train` recorded in model.json, else "
                             "float for trees and, for k-NN, int when every training value is an int16 integer. "
                             "MLPs always compute in float32")
    parser.add_argument("--calibration", type=Path,
                        help="CNN: a .npz of representative uint8 images (X_calib, X, X_train or images) that set the "
                             "int8 activation ranges")
    parser.add_argument("--dtype", choices=("int8", "float32"),
                        help="CNN: int8 (default when --calibration is given) or float32")


def run_cnn(args: argparse.Namespace) -> int:
    """A CNN (ONNX / PyTorch) -> .cnn file; parity proven in the host firmware on the test set's images."""
    from tinysense.cnn import convert as cnn_convert

    test_set = args.test_set or args.model.parent / "test.npz"
    if args.test_set is None and not test_set.exists():
        raise CommandError(f"no test set beside {args.model}; pass --test-set FILE.npz with X_test (uint8 images "
                           "N x H x W x C) to prove parity on")
    x_test, y_test = cnn_convert.images_from(test_set, ("X_test",), "test set")
    calibration = None
    if args.calibration is not None:
        calibration = cnn_convert.images_from(args.calibration, cnn_convert.CALIBRATION_KEYS, "calibration set")[0]
    dtype = args.dtype or ("int8" if calibration is not None else "float32")
    output = args.output or args.model.with_suffix(cnn_convert.OUTPUT_SUFFIX)
    report_path = args.report or output.with_name(output.name + ".parity.json")
    model, parity, description = cnn_convert.convert_network(args.model, x_test, y_test, calibration, dtype=dtype)
    report = {"model": str(args.model), "device_model": str(output), "device_model_bytes": len(model),
              "estimator": f"CNN ({description})", "test_set": str(test_set), **parity.to_dict()}
    _write_outputs(report_path, report, output, model if parity.ok else None)
    if not parity.ok:
        raise CommandError(f"the device disagrees on {len(parity.mismatches)} of {parity.n_samples} test images "
                           f"(first: {parity.mismatches[:5]}; {parity.note}); {output} not written, see {report_path}")
    accuracy = "" if parity.device_accuracy is None else f", device accuracy {parity.device_accuracy:.3f}"
    print(f"{output}: {len(model)} B {dtype} CNN from {description}, {parity.details['arena_bytes']} B arena; parity: "
          f"{parity.n_agree}/{parity.n_samples} test images in the host firmware ({parity.note}); same class as the "
          f"float network on {parity.details['float_agreement']:.1%}{accuracy}; report {report_path}")
    return 0


def _write_outputs(report_path: Path, report: dict[str, Any], output: Path, model: bytes | None) -> None:
    """The parity report, and the device model when parity holds (model is None otherwise); each atomically."""
    try:
        write_bytes_atomic(report_path, (json.dumps(report, indent=2) + "\n").encode())
        if model is not None:
            write_bytes_atomic(output, model)
    except OSError as error:
        raise CommandError(f"cannot write {output} ({error.strerror}); choose another --output") from None


def run(args: argparse.Namespace) -> int:
    if conversion.is_cnn_file(args.model):
        return run_cnn(args)
    if args.calibration is not None or args.dtype is not None:
        raise CommandError("--calibration and --dtype apply to CNNs (.onnx, .pt, .pth, .ts) only: drop them")
    estimator = conversion.load_estimator(args.model)
    meta = conversion.metadata_beside(args.model)
    features = args.features if args.features != "auto" else meta.get("device_features")
    test_set = args.test_set or args.model.parent / "test.npz"
    if args.test_set is None and not test_set.exists():
        raise CommandError(f"no test set beside {args.model}; pass --test-set FILE.npz with X_test to prove parity on")
    X_test, y_test = conversion.load_test_set(test_set, int(estimator.n_features_in_))
    output = args.output or args.model.with_suffix(conversion.SUFFIXES[str(conversion.family(estimator))])
    report_path = args.report or output.with_name(output.name + ".parity.json")
    model, parity = conversion.convert(estimator, X_test, y_test, features=features)
    report = {"model": str(args.model), "device_model": str(output), "device_model_bytes": len(model),
              "estimator": conversion.describe(estimator), "test_set": str(test_set), **parity.to_dict()}
    _write_outputs(report_path, report, output, model if parity.ok else None)
    accuracy = "" if parity.device_accuracy is None else f", device accuracy {parity.device_accuracy:.3f}"
    if not parity.ok:
        note = f"; {parity.note}" if parity.note else ""
        raise CommandError(f"the device disagrees with scikit-learn on {len(parity.mismatches)} of {parity.n_samples} "
                           f"test rows (first: {parity.mismatches[:5]}{note}); {output} not written, see {report_path}")
    note = f" ({parity.note})" if parity.note else ""
    print(f"{output}: {len(model)} B {conversion.describe(estimator)} ({parity.details['features']} features); "
          f"parity: {parity.n_agree}/{parity.n_samples} test rows predicted the same in the host firmware{note}"
          f"{accuracy}; report {report_path}")
    return 0
