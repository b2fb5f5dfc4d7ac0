"""Stage split: train/val/test manifests (CSV) for Stanford40 and HMDB51."""
from pathlib import Path

from twostream.cli import log, run_stage, stage_parser
from twostream.data import splits
from twostream.io import atomic_dir


def main(args, params):
    raw, s = Path(args.raw), params.split
    if s.lists == "seed":
        log.info("using the seed authors' exact split lists")
        stanford = splits.seed_stanford40(raw / "stanford40", s.oversample)
        hmdb = splits.seed_hmdb51(raw / "hmdb51")
    else:
        stanford = splits.split_stanford40(splits.stanford40_items(raw / "stanford40"), s.test_fraction,
                                           s.val_fraction, params.seed, s.oversample)
        hmdb = splits.split_hmdb51(splits.hmdb51_items(raw / "hmdb51", s.hmdb51_split), s.val_fraction,
                                   params.seed)
    with atomic_dir(args.out) as tmp:
        for dataset, parts in (("stanford40", stanford), ("hmdb51", hmdb)):
            for name, frame in parts.items():
                frame.to_csv(tmp / f"{dataset}_{name}.csv", index=False)
                log.info("%s %s: %d items, %d unique", dataset, name, len(frame), frame["path"].nunique())


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--raw", required=True, help="raw data directory (download's output)")
    parser.add_argument("--out", required=True, help="manifest directory")
    run_stage(main, parser)
