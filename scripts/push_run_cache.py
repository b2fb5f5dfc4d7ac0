"""Push the workspace's outputs and the run-cache to a DVC remote, with the outputs of every run
in the run-cache, so that another clone's `dvc exp run --pull` / `dvc repro --pull` restores any run
pushed here instead of running it again.

    python scripts/push_run_cache.py [-r REMOTE] [-j JOBS]        (make push)

Why not just `dvc push --run-cache`: DVC 3 sends every run-cache entry (which stage and inputs gave
which outputs) but only the outputs of the workspace. The outputs of other runs, and the uncached
results (`cache: false` metrics and plots) that DVC keeps in the local cache for every entry, stay
behind; a clone that finds such an entry cannot restore it and runs the stage again. This does what
`dvc push --run-cache` does, then pushes the objects of every entry (as DVC 2 did).
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-r", "--remote", help="DVC remote (default: the repository's default remote)")
    parser.add_argument("-j", "--jobs", type=int, help="parallel transfers (DVC's default if not given)")
    args = parser.parse_args(argv)

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo() as repo:
            pushed = repo.push(remote=args.remote, jobs=args.jobs)
            entries = repo.stage_cache.push(args.remote)  # every (key, value) entry, sent again (force)
            transferred, missing = set(), set()
            for objs in repo.stage_cache.get_used_objs(entries).values():
                result = repo.cloud.push(objs, jobs=args.jobs, remote=args.remote)
                transferred |= result.transferred
                missing |= result.failed
    except DvcException as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C); run it again to finish the push", file=sys.stderr)
        return 130
    print(f"pushed {pushed} file(s) of the workspace, {len(entries)} run-cache entries and "
          f"{len(transferred)} object(s) of their outputs")
    if missing:
        print(f"warning: {len(missing)} object(s) of run-cache entries are not in the local cache (removed by "
              f"`dvc gc`?); a clone runs those stages again", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
