"""`tinysense convert`: scikit-learn model → device model file, proven equal in the host firmware."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinysense import conversion
from tinysense.atomic import write_bytes_atomic
from tinysense.errors import CommandError

NAME = "convert"
HELP = ("convert a scikit-learn model (trees, k-NN, MLP; joblib/pickle) to the device format and prove parity in the "
        "host firmware")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="scikit-learn model saved with joblib or pickle (model.joblib)")
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


def run(args: argparse.Namespace) -> int:
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
    try:
        write_bytes_atomic(report_path, (json.dumps(report, indent=2) + "\n").encode())
        if parity.ok:
            write_bytes_atomic(output, model)
    except OSError as error:
        raise CommandError(f"cannot write {output} ({error.strerror}); choose another --output") from None
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
