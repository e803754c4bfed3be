"""Cut recordings into fixed-length windows, as the device's ring buffer does (length and hop in samples)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class Windows:
    data: np.ndarray  # (m, length, channels)
    recording: np.ndarray  # (m,) index of the recording each window comes from
    start: np.ndarray  # (m,) first sample of each window in its recording


def n_windows(n_samples: int, length: int, hop: int) -> int:
    return 0 if n_samples < length else (n_samples - length) // hop + 1


def make_windows(recordings: Sequence[np.ndarray], length: int, hop: int) -> Windows:
    """Windows [k·hop, k·hop + length) of every recording; a recording shorter than `length` gives none."""
    if length < 1 or hop < 1:
        raise ValueError(f"window length and hop must be >= 1, got {length} and {hop}")
    parts, owners, starts = [], [], []
    for index, recording in enumerate(recordings):
        r = np.asarray(recording)
        if r.ndim == 1:
            r = r[:, None]
        count = n_windows(len(r), length, hop)
        if count == 0:
            continue
        view = np.lib.stride_tricks.sliding_window_view(r, length, axis=0)[::hop][:count]  # (count, ch, length)
        parts.append(view.transpose(0, 2, 1))
        owners.append(np.full(count, index))
        starts.append(np.arange(count) * hop)
    if not parts:
        channels = np.asarray(recordings[0]).shape[1] if recordings and np.ndim(recordings[0]) == 2 else 1
        return Windows(np.zeros((0, length, channels)), np.zeros(0, dtype=int), np.zeros(0, dtype=int))
    return Windows(np.ascontiguousarray(np.concatenate(parts)), np.concatenate(owners), np.concatenate(starts))
