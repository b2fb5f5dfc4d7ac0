"""twostream export: write a trained model as TorchScript or ONNX, with a JSON sidecar (`<FILE>.json`) that
gives the inputs, the classes and how to prepare inputs (normalisation is not inside the graph)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL",
                        help="a model file (models/*.pt) or a pipeline model name (as for predict)")
    parser.add_argument("--format", required=True, help="torchscript or onnx")  # checked by twostream.export
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write (and FILE.json next to it)")
    parser.add_argument("--models", default="models", help="where model names are looked up (default: models)")
    parser.add_argument("--params", default="params.yaml",
                        help="params file for hmdb51_frames' position (default: params.yaml)")


def run(args: argparse.Namespace) -> int:
    from twostream.commands.predict import model_files
    from twostream.errors import InputError
    from twostream.export import FORMATS, check_supported, export_model, sidecar_path
    from twostream.model_table import BY_NAME

    if args.model in BY_NAME and BY_NAME[args.model].fuses:  # no single network to export
        check_supported(BY_NAME[args.model].kind, args.format, args.model)
    if args.format not in FORMATS:  # before loading anything
        raise InputError(f"--format {args.format}: unknown export format; one of {', '.join(FORMATS)}")
    (model,) = model_files(argparse.Namespace(model=[args.model], models=args.models, params=args.params))
    sidecar = export_model(model, args.format, Path(args.out))
    inputs = ", ".join(f"{i['name']} ({', '.join(map(str, i['shape']))})" for i in sidecar["inputs"])
    print(f"{args.out}: {sidecar['model']['kind']} model as {args.format}; inputs {inputs}, normalised "
          f"outside the graph; logits out; see {sidecar_path(args.out)}")
    return 0
