"""Stage split: train/val/test manifests (CSV: path, label, class) for Stanford40 and HMDB51."""
from pathlib import Path

from twostream.cli import log, run_stage, stage_parser
from twostream.data import layout, splits
from twostream.data.manifests import manifest_name, write_manifest
from twostream.io import atomic_dir


def main(args, params, runtime):
    raw, s = Path(args.raw), params.split
    stanford40_root, hmdb51_root = raw / layout.STANFORD40, raw / layout.HMDB51
    excluded = splits.read_exclusions(Path(args.exclude) if args.exclude else None)
    if s.lists == "seed":
        log.info("using the seed authors' exact split lists")
        stanford = splits.seed_stanford40(stanford40_root, s.oversample, excluded[layout.STANFORD40])
        hmdb = splits.seed_hmdb51(hmdb51_root, excluded[layout.HMDB51])
    else:
        stanford = splits.split_stanford40(splits.stanford40_items(stanford40_root, excluded[layout.STANFORD40]),
                                           s.test_fraction, s.val_fraction, params.seed, s.oversample)
        hmdb = splits.split_hmdb51(splits.hmdb51_items(hmdb51_root, s.hmdb51_fold, excluded[layout.HMDB51]),
                                   s.val_fraction, params.seed, s.val_groups)
    val, shared = hmdb["val"], splits.shared_sources(hmdb["train"], hmdb["val"])
    log.info("hmdb51 val: %d clips of %d classes from %d source videos, %d of which also have clips in train",
             len(val), val["class"].nunique(), splits.hmdb51_sources(val).nunique(), len(shared))
    with atomic_dir(args.out) as tmp:
        for dataset, subsets in ((layout.STANFORD40, stanford), (layout.HMDB51, hmdb)):
            for subset, frame in subsets.items():
                write_manifest(frame, tmp / manifest_name(dataset, subset))
                log.info("%s %s: %d items, %d unique", dataset, subset, len(frame), frame["path"].nunique())


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", required=True, help="raw data directory (download's output)")
    parser.add_argument("--exclude", help="exclusion list: files under --raw to leave out for good (exclude.txt)")
    parser.add_argument("--out", required=True, help="manifest directory")
    run_stage(main, parser)
