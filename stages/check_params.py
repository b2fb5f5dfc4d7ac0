"""Stage check_params: validate params.yaml whole, so a misspelled or unknown key fails `dvc repro`
even when no other stage would run. It depends on params.yaml as a file (every key, comments
too) and writes nothing, so no other stage depends on it."""
from twostream.cli import run_stage, stage_parser
from twostream.data.sizes import check_sizes
from twostream.errors import ParamsError


def main(args, params, runtime):
    try:
        check_sizes(params)  # also the limits only the synthetic generator knows
    except ParamsError as exc:  # named like every other params error: file, then key
        raise ParamsError(f"{args.params}: {exc}") from None
    print(f"{args.params}: valid")


if __name__ == "__main__":
    run_stage(main, stage_parser(__doc__), runtime=False)
