"""Stage download: raw Stanford40 and HMDB51 in their distributed layouts (twostream.data.layout).

data.source synthetic generates the embedded synthetic dataset; real downloads and extracts
the 12 classes of the real archives (locations and cache in runtime.yaml `downloads`)."""
from pathlib import Path

from twostream.cli import log, run_stage, stage_parser
from twostream.data import layout
from twostream.io import atomic_dir


def main(args, params, runtime):
    out = Path(args.out)
    if params.data.source == "synthetic":
        from twostream.data import synthetic
        processes = runtime.cpu_processes()
        steps = {layout.STANFORD40: lambda d: synthetic.generate_stanford40(d, params.data.synthetic, params.seed,
                                                                           processes),
                 layout.HMDB51: lambda d: synthetic.generate_hmdb51(d, params.data.synthetic, params.seed, processes)}
    else:
        from twostream.data import sources
        steps = {layout.STANFORD40: lambda d: sources.fetch_stanford40(d, runtime.downloads),
                 layout.HMDB51: lambda d: sources.fetch_hmdb51(d, runtime.downloads)}
    for name, step in steps.items():
        log.info("%s: %s -> %s", params.data.source, name, out / name)
        with atomic_dir(out / name) as tmp:
            step(tmp)


if __name__ == "__main__":
    parser = stage_parser(__doc__)
    parser.add_argument("--out", required=True, help="raw data directory")
    run_stage(main, parser)
