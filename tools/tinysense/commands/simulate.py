"""`tinysense simulate`: replay recordings through the device's C DSP and model code in the host firmware."""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from tinysense import simulation
from tinysense.atomic import write_bytes_atomic
from tinysense.errors import CommandError

NAME = "simulate"
HELP = "replay .npy (IMU) or .wav (audio) recordings through the device's C code; print predictions/levels per window"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recordings", nargs="+", type=Path, help=".npy IMU recordings or .wav audio files")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="folder `tinysense train` wrote (or its model.trees)")
    source.add_argument("--image", type=Path, help="a filesystem image from `tinysense bundle` (model read from it)")
    parser.add_argument("--output", "-o", type=Path, help="also write the per-window results as CSV")
    parser.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    audio = parser.add_argument_group("audio (.wav)")
    audio.add_argument("--chunk-ms", type=float, default=125.0, help="level per chunk of this length (default 125)")
    audio.add_argument("--weighting", choices=("A", "C", "Z"), default="A")
    audio.add_argument("--mic-sensitivity-dbfs", type=float, default=-26.0,
                       help="the microphone's output for 94 dB SPL, in dBFS (default -26)")


def run(args: argparse.Namespace) -> int:
    kinds = {p.suffix.lower() for p in args.recordings}
    if not kinds <= {".npy", ".wav"} or len(kinds) != 1:
        raise CommandError(f"recordings must be all .npy (IMU) or all .wav (audio), got {sorted(kinds)}; "
                           "pass one kind at a time")
    for path in args.recordings:
        if not path.is_file():
            raise CommandError(f"recording {path} does not exist; pass existing files")
    notes: list[str] = []
    summary = ""
    if kinds == {".wav"}:
        results = simulation.simulate_audio(args.recordings, chunk_s=args.chunk_ms / 1000, weighting=args.weighting,
                                            mic_sensitivity_dbfs=args.mic_sensitivity_dbfs)
        summary = f"{len(results)} chunks of {args.chunk_ms:g} ms from {len(args.recordings)} recordings"
    else:
        if not (args.model or args.image):
            raise CommandError("IMU recordings need a model; pass --model FOLDER (from train) or --image FS.bin")
        model = simulation.model_from_image(args.image) if args.image else simulation.model_from_folder(args.model)
        results, notes = simulation.simulate_imu(model, args.recordings)
        named = [(r, simulation.label_from_name(r.recording, model.classes)) for r in results]
        known = [(r, label) for r, label in named if label is not None]
        accuracy = (f"; agreement with the labels in the file names: {sum(r.value == lab for r, lab in known)}/"
                    f"{len(known)} windows ({sum(r.value == lab for r, lab in known) / len(known):.3f})"
                    if known else "")
        summary = f"{len(results)} windows from {len(args.recordings)} recordings through {model.source}{accuracy}"
    for note in notes:
        print(f"tinysense simulate: warning: {note}")
    if not args.quiet:
        for r in results:
            print(f"{r.recording}\t{r.index}\t{r.start_s:.2f}s\t{r.value}")
    if args.output:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["recording", "window", "start_s", "result"])
        writer.writerows([r.recording, r.index, f"{r.start_s:.3f}", r.value] for r in results)
        try:
            write_bytes_atomic(args.output, out.getvalue().encode())
        except OSError as error:
            raise CommandError(f"cannot write {args.output} ({error.strerror}); choose another --output") from None
    print(f"simulate: {summary}")
    return 0
