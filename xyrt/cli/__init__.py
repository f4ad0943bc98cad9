"""The ``xyrt`` command line: parse -> build objects -> run. Errors print one clear line.

Exit status: 0 done; 1 an error in the input or the environment (`XyrtError`, `OSError`: one
line); 2 a malformed command line; 3 an internal error, a bug in xyrt: one line naming the
exception and where it was raised (``XYRT_DEBUG=1`` shows the traceback); 130 interrupted.

The parser is `xyrt.cli.parser`: one ``add_<command>`` per command, in the module of its
workflow (`prepare`, `run`, `measure`), from the option sets of `shared` and `base`.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from xyrt.cli.base import AppliesWhen, applies_when
from xyrt.cli.parser import (
    FILE_OUTPUT_COMMANDS,
    build_parser,
    check_applies,
    given_options,
    subparser,
)
from xyrt.errors import XyrtError, one_line


def _check_finite(args: argparse.Namespace) -> None:
    """Every float option (``type=float``) must be finite: nan and inf are refused here, once."""
    for name, value in vars(args).items():
        if isinstance(value, float) and not math.isfinite(value):
            option = "--" + name.replace("_", "-")
            raise XyrtError(f"{option} must be a finite number, got {value}")


def raw_output(argv: Sequence[str]) -> str | None:
    """``-o``/``--output`` as typed (argparse's Path drops a trailing slash)."""
    for i, arg in enumerate(argv):
        if arg in ("-o", "--output") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--output="):
            return arg.split("=", 1)[1]
        if arg.startswith("-o") and not arg.startswith("--") and len(arg) > 2:
            return arg[2:]
    return None


def _check_output_form(args: argparse.Namespace, argv: Sequence[str]) -> str | None:
    """A file output typed as a folder (``-o newdir/``), as a message, or None."""
    raw = raw_output(argv)
    if raw is None or not raw.endswith(("/", os.sep)):
        return None
    files = args.command in FILE_OUTPUT_COMMANDS
    if args.command == "convert":
        files = (args.to or ("ckpt" if args.source.is_dir() else "hf")) == "ckpt"
    if files:
        return (
            f"-o {raw} ends with '/', so it names a folder; {args.command} writes a file here: "
            f"give its name (such as {raw}{OUTPUT_EXAMPLE.get(args.command, 'out')})"
        )
    return None


OUTPUT_EXAMPLE = {
    "encode": "codes.npy",
    "decode": "audio.wav",
    "calib": "calib.npz",
    "synth": "model.ckpt",
    "stream": "codes.jsonl",
    "convert": "model.ckpt",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xyrt`` console script; returns the exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    wrong = check_applies(args, argv) or _check_output_form(args, argv)
    if wrong is not None:
        subparser(parser, args.command).error(wrong)
    if args.command == "decode" and args.output is None and not (args.stream and args.play):
        parser.error("decode needs -o/--output (or --stream with --play)")
    try:
        _check_finite(args)
        if args.command in FILE_OUTPUT_COMMANDS and getattr(args, "output", None) is not None:
            from xyrt.atomic import check_recordable, claim_file

            # before any work: a directory, a file xyrt did not write, a cache that cannot
            # record this output
            claim_file(args.output, force=args.force)
            check_recordable()
        args.func(args)
    except XyrtError as exc:
        print(f"xyrt {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except OSError as exc:  # the file system said no (permissions, full disk, a vanished file)
        print(f"xyrt {args.command}: error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"xyrt {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - not bad input but a bug: visible, in one line
        if os.environ.get("XYRT_DEBUG"):
            raise
        print(f"xyrt {args.command}: {internal_error(exc)}", file=sys.stderr)
        return 3
    return 0


def internal_error(exc: BaseException) -> str:
    """One line for an exception xyrt did not expect: its type, message and where it was
    raised, marked as a bug (bad input is an `XyrtError`, with a message of its own)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return (
        f"internal error: {type(exc).__name__}: {one_line(str(exc))[:300]}{where}. This is a "
        "bug in xyrt: please report it with the command; XYRT_DEBUG=1 shows the traceback"
    )


__all__ = ["AppliesWhen", "applies_when", "build_parser", "check_applies", "given_options", "main"]
