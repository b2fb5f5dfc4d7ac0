"""twostream aggregate: not implemented yet."""
from __future__ import annotations

import argparse

from twostream.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    raise InputError("twostream aggregate is not implemented yet")
