"""The `twostream` command (installed by `make install`): tools over a trained pipeline.

    twostream compare [A [B]]     paired comparison of two revisions' per-video predictions
    twostream aggregate ...       mean ± std over seeds, the HMDB51 three-fold protocol
    twostream predict PATH...     classify videos or images with a trained model
    twostream export MODEL ...    TorchScript / ONNX export

Each subcommand lives in its own module (`twostream.commands.<name>`), imported only when it
runs, with `add_arguments(parser)` and `run(args) -> int`. Expected failures
(`TwostreamError`) end in one line and exit status 1; Ctrl-C in one line and 130.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys

from twostream.errors import TwostreamError, write_line

COMMANDS = {
    "compare": "paired comparison of two revisions' or experiments' test predictions",
    "aggregate": "mean ± std of finished experiments over seeds and HMDB51 folds",
    "predict": "classify videos or images with a trained model",
    "export": "export a trained model to TorchScript or ONNX",
}

INTERRUPTED = 128 + signal.SIGINT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twostream", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"twostream.commands.{name}")
        module.add_arguments(sub.add_parser(name, help=help_text, description=module.__doc__))
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        module = importlib.import_module(f"twostream.commands.{args.command}")
        return int(module.run(args) or 0)
    except TwostreamError as exc:
        write_line(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        write_line("error: interrupted (Ctrl-C)")
        return INTERRUPTED
    except BrokenPipeError:  # `twostream ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
