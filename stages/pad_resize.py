"""Stage pad_resize: Stanford40 images zero-padded to a square and resized, one array per split."""
from pathlib import Path

from twostream.cli import run_stage, stage_parser
from twostream.data.images import pad_resize_files
from twostream.data.splits import COLUMNS, SPLITS
from twostream.io import atomic_dir, open_array, read_csv


def main(args, params):
    root, size = Path(args.raw), params.image.size
    with atomic_dir(args.out) as tmp:
        for split in SPLITS:
            manifest = read_csv(Path(args.manifests) / f"stanford40_{split}.csv", COLUMNS)
            with open_array(tmp / f"stanford40_{split}.npy", (len(manifest), size, size, 3)) as images:
                pad_resize_files([root / p for p in manifest["path"]], size, images, desc=f"stanford40 {split}")
            manifest.to_csv(tmp / f"stanford40_{split}.csv", index=False)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", required=True, help="raw Stanford40 directory")
    parser.add_argument("--manifests", required=True, help="split's manifest directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
