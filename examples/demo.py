"""tinysense demo (`make demo`): the device's C modules at work inside the host firmware.

1. DSP: a microphone chunk through the C array, IIR and FFT modules (examples/mp/dsp_chain.py).
2. ML: a random forest trained with scikit-learn on the digits dataset bundled with it, converted
   to the device format, then run by the C trees module on every test image to prove the device
   predicts exactly what scikit-learn predicts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

from tinysense import host, trees

EXAMPLES = Path(__file__).resolve().parent


def dsp_demo() -> None:
    proc = host.run([str(EXAMPLES / "mp" / "dsp_chain.py")])
    if proc.returncode != 0:
        sys.exit(f"demo: the DSP chain failed in the host firmware:\n{proc.stderr.decode()}")
    print(proc.stdout.decode().strip())


def ml_demo() -> None:
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X.astype("int16"), y, test_size=0.25, random_state=0,
                                                        stratify=y)
    model = RandomForestClassifier(n_estimators=10, max_leaf_nodes=100, random_state=0).fit(X_train, y_train)
    device_model = trees.convert(model, X_train)
    start = time.perf_counter()
    agreement = trees.verify(device_model, model, X_test)
    elapsed = time.perf_counter() - start
    accuracy = (model.predict(X_test) == y_test).mean()
    print(f"ml: digits, random forest of 10 trees: {len(device_model)} byte device model, "
          f"test accuracy {100 * accuracy:.1f} %")
    print(f"ml: device vs scikit-learn on {agreement.n_samples} test images: {agreement} "
          f"(host firmware run: {elapsed:.2f} s)")


def main() -> int:
    print(f"host firmware: {host.firmware_or_raise()}")
    dsp_demo()
    ml_demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
