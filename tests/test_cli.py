"""The stage entry point: expected failures end with one line, Ctrl-C with exit status 130."""
import errno
import logging
import signal
import sys

import pytest

from twostream import errors
from twostream.cli import INTERRUPTED, LineHandler, run_stage, stage_parser
from twostream.errors import ListError, MissingInputError, ParamsError, TwostreamError
from twostream.params import Params, RuntimeParams


def run(monkeypatch, main, *argv, runtime=True):
    monkeypatch.setattr(sys, "argv", ["stage.py", *argv])
    run_stage(main, stage_parser("a test stage"), runtime=runtime)


def test_main_gets_params_and_runtime(monkeypatch):
    got = {}

    def main(args, params, runtime):
        got.update(args=args, params=params, runtime=runtime)

    run(monkeypatch, main)
    assert isinstance(got["params"], Params) and isinstance(got["runtime"], RuntimeParams)
    assert got["args"].params == "params.yaml" and got["args"].runtime == "runtime.yaml"
    run(monkeypatch, main, runtime=False)  # e.g. check_params: runtime.yaml is not read
    assert got["runtime"] is None


@pytest.mark.parametrize("error", [ParamsError("split.val_fraction: bad"), ListError("a.txt:3: bad line"),
                                   MissingInputError("data/x.npy: array not found")])
def test_expected_failure_is_one_line_and_status_1(monkeypatch, capsys, error):
    def main(args, params, runtime):
        raise error

    with pytest.raises(SystemExit) as exit_:
        run(monkeypatch, main)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {error}\n"


def test_bad_params_file_is_an_expected_failure(monkeypatch, capsys, tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\n")
    with pytest.raises(SystemExit) as exit_:
        run(monkeypatch, lambda *a: None, "--params", str(tmp_path / "params.yaml"))
    assert exit_.value.code == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'params.yaml'}: data: missing key")
    with pytest.raises(SystemExit) as exit_:
        run(monkeypatch, lambda *a: None, "--runtime", str(tmp_path / "none.yaml"))
    assert exit_.value.code == 1 and "none.yaml: file not found" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    def main(args, params, runtime):
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        run(monkeypatch, main)
    assert exit_.value.code == INTERRUPTED == 128 + signal.SIGINT == 130
    err = capsys.readouterr().err
    assert err.startswith("error: interrupted (Ctrl-C)") and err.count("\n") == 1
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # a second Ctrl-C (torchrun sends one) cannot cut it


def test_a_bug_keeps_its_traceback(monkeypatch):
    def main(args, params, runtime):
        raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError, match="a bug"):
        run(monkeypatch, main)


def test_messages_name_the_rank_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")

    def main(args, params, runtime):
        raise ListError("a.txt:3: bad line")

    with pytest.raises(SystemExit):
        run(monkeypatch, main)
    assert capsys.readouterr().err == "error: [rank 1] a.txt:3: bad line\n"


def test_every_error_type_is_a_twostream_error():
    types = [t for t in vars(errors).values() if isinstance(t, type) and issubclass(t, Exception)]
    assert len(types) == 12
    assert all(issubclass(t, TwostreamError) for t in types)
    # callers that catch the builtin kinds still do
    assert issubclass(errors.MissingInputError, FileNotFoundError)
    assert issubclass(errors.ParamsError, ValueError) and issubclass(errors.SourceError, RuntimeError)


def test_a_full_disk_outside_twostream_io_is_one_line(monkeypatch, capsys):
    # a library writing its own files (DVCLive, matplotlib) raises a bare OSError, or torch.save a
    # RuntimeError raised while handling one
    def bare(args, params, runtime):
        raise OSError(errno.ENOSPC, "No space left on device", "plots/training/loss.tsv")

    def wrapped(args, params, runtime):
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598") from None

    for main, line in ((bare, "plots/training/loss.tsv: cannot write it: no space left on the device ("),
                       (wrapped, "a file of this stage's outputs: cannot write it: the disk quota is exceeded (")):
        with pytest.raises(SystemExit) as exit_:
            run(monkeypatch, main)
        err = capsys.readouterr().err
        assert exit_.value.code == 1 and err.startswith(f"error: {line}") and err.count("\n") == 1, err
        assert err.endswith("MiB free); free space there (or raise the limit) and run again (the previous output "
                            "is left as it was)\n")
    assert signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN  # over `ulimit -f`: EFBIG, not a silent kill


def test_log_records_go_out_in_one_write(capfd):
    logger = logging.getLogger("twostream.test_one_write")
    handler = LineHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    try:
        logger.warning("two\nlines")
    finally:
        logger.removeHandler(handler)
    assert capfd.readouterr().err == "WARNING twostream.test_one_write: two\nlines\n"
