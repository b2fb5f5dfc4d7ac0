"""Stage pad_resize: Stanford40 images zero-padded to a square and resized, one array per subset."""
from pathlib import Path

from twostream.cli import run_stage, stage_parser
from twostream.data import arrays
from twostream.data.images import pad_resize_files
from twostream.data.manifests import manifest_name, read_manifest, write_manifest
from twostream.io import atomic_dir, open_array
from twostream.params import SUBSETS


def main(args, params, runtime):
    root, size = Path(args.raw), params.image.size
    with atomic_dir(args.out) as tmp:
        for subset in SUBSETS:
            name = manifest_name("stanford40", subset)
            manifest = read_manifest(Path(args.manifests) / name, "stanford40")
            with open_array(tmp / arrays.images(subset), (len(manifest), size, size, 3)) as images:
                pad_resize_files([root / p for p in manifest["path"]], size, images, desc=f"stanford40 {subset}")
            write_manifest(manifest, tmp / name)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", required=True, help="raw Stanford40 directory")
    parser.add_argument("--manifests", required=True, help="the split stage's manifest directory")
    parser.add_argument("--out", required=True, help="output directory")
    run_stage(main, parser)
