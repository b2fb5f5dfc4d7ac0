"""Run a DVC command (`dvc repro`, `dvc exp run ...`) and time each stage it runs.

    python scripts/stage_times.py [--log FILE] dvc exp run -S image.size=224 ...

DVC's output passes through unchanged (also into --log); a stage's time runs from its
"Running stage" line to the next stage's line or to the end of the command. At the end,
also after a failure or Ctrl-C, a table of the stages' wall-clock times is printed (and
appended to the log). `make realsize` and the full-setting dry-run test use it.
"""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import time

STAGE_LINE = re.compile(r"Running stage '([^']+)'|Stage '([^']+)' (?:is cached|didn't change)")


def summary(times: list[tuple[str, float, bool]], total: float, status: str) -> str:
    lines = [f"stage times ({status}):"]
    for name, seconds, ran in times:
        lines.append(f"  {name:<28} {seconds:9.1f} s{'' if ran else '  (cached or unchanged)'}")
    lines.append(f"  {'total':<28} {total:9.1f} s")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log", help="also write the output and the table to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run")
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("no command given")
    log = open(args.log, "a") if args.log else None
    started = time.perf_counter()
    times: list[tuple[str, float, bool]] = []
    current: tuple[str, float, bool] | None = None
    proc = subprocess.Popen(args.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)

    def forward(signum, frame):  # Ctrl-C or kill: let DVC stop cleanly, then print the table
        proc.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    def close(now: float) -> None:
        if current is not None:
            times.append((current[0], now - current[1], current[2]))

    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if log:
            log.write(line)
            log.flush()
        match = STAGE_LINE.search(line)
        if match:
            now = time.perf_counter()
            close(now)
            current = (match.group(1) or match.group(2), now, bool(match.group(1)))
    code = proc.wait()
    end = time.perf_counter()
    close(end)
    table = summary(times, end - started, "finished" if code == 0 else f"exit status {code}")
    sys.stdout.write(table)
    if log:
        log.write(table)
        log.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
