"""Reports of `tinysense train`: the accuracy-vs-cost table, the Pareto plot and the confusion matrix (PNG)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tinysense.atomic import write_bytes_atomic
from tinysense.errors import CommandError
from tinysense.training import Candidate


def _instructions(c: Candidate) -> str:
    return f"{c.cost.instructions:,.0f}" if c.cost and c.cost.instructions is not None else "n/a"


def pareto_markdown(candidates: Sequence[Candidate], chosen: Candidate) -> str:
    lines = ["| trees | max leaves | min samples/leaf | train f1 | test f1 (mean ± sd) | flash B | RAM B | "
             "instructions/inference | Pareto | chosen |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|"]
    for c in sorted(candidates, key=lambda c: (c.cost.flash_bytes if c.cost else 0)):
        p = c.params
        lines.append(
            f"| {p.get('n_estimators', 1)} | {p.get('max_leaf_nodes') or '-'} | {p.get('min_samples_leaf', 1)} | "
            f"{c.train_mean:.3f} | {c.test_mean:.3f} ± {c.test_std:.3f} | {c.cost.flash_bytes if c.cost else 0} | "
            f"{c.cost.ram_bytes if c.cost else 0} | {_instructions(c)} | {'✓' if c.pareto else ''} | "
            f"{'◀' if c is chosen else ''} |")
    return "\n".join(lines) + "\n"


def pareto_csv(candidates: Sequence[Candidate]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["n_estimators", "max_leaf_nodes", "min_samples_leaf", "train_f1", "test_f1_mean", "test_f1_std",
                     "flash_bytes", "ram_bytes", "instructions", "pareto"])
    for c in candidates:
        p = c.params
        instr = "" if not c.cost or c.cost.instructions is None else f"{c.cost.instructions:.0f}"
        writer.writerow([p.get("n_estimators", 1), p.get("max_leaf_nodes") or "", p.get("min_samples_leaf", 1),
                         f"{c.train_mean:.4f}", f"{c.test_mean:.4f}", f"{c.test_std:.4f}",
                         c.cost.flash_bytes if c.cost else "", c.cost.ram_bytes if c.cost else "", instr,
                         int(c.pareto)])
    return out.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_png(candidates: Sequence[Candidate], chosen: Candidate) -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    sizes = [c.cost.flash_bytes if c.cost else 0 for c in candidates]
    ax.errorbar(sizes, [c.test_mean for c in candidates], yerr=[c.test_std for c in candidates], fmt="o",
                color="0.6", label="candidates", capsize=2)
    front = sorted((c for c in candidates if c.pareto), key=lambda c: c.cost.flash_bytes if c.cost else 0)
    ax.plot([c.cost.flash_bytes for c in front if c.cost], [c.test_mean for c in front], "o-", color="C0",
            label="Pareto front")
    if chosen.cost:
        ax.plot([chosen.cost.flash_bytes], [chosen.test_mean], "*", color="C3", markersize=14, label="chosen")
    ax.set_xscale("log")
    ax.set_xlabel("model size on flash (bytes)")
    ax.set_ylabel("test f1_micro (group-aware CV)")
    ax.set_title("accuracy vs device cost")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def confusion_png(matrix: np.ndarray, classes: Sequence[str], title: str) -> bytes:
    plt = _pyplot()
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * n, 1.0 + 0.8 * n), dpi=100)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = matrix.max() if matrix.size else 0
    for i in range(n):
        for j in range(n):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > top / 2 else "k")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def write_outputs(directory: Path, files: dict[str, bytes]) -> None:
    """Write every output (all computed beforehand) into `directory`, each one atomically (temporary file, rename)."""
    try:
        for name, data in files.items():
            write_bytes_atomic(directory / name, data)
    except OSError as error:
        raise CommandError(f"cannot write into {directory} ({error.strerror}); choose another --output") from None
