"""README.md's results sections are exactly what scripts/readme_results.py writes from the committed results."""
import sys
from pathlib import Path

import pytest

from twostream.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import readme_results  # noqa: E402


def test_committed_readme_shows_the_committed_results():
    readme = (ROOT / "README.md").read_text()
    assert readme_results.current_block(readme) == readme_results.results_block(ROOT), (
        "README.md's results block is stale: run python scripts/readme_results.py (make repro does)")
    assert readme_results.main(["--check"]) == 0


def test_the_block_is_replaced_between_the_markers_only():
    begin, end = readme_results.BEGIN, readme_results.END
    readme = f"# Title\n\ntext\n{begin}\nold\nresults\n{end}\n\nafter\n"
    updated = readme_results.with_block(readme, "| new |\n")
    assert updated == f"# Title\n\ntext\n{begin}\n| new |\n{end}\n\nafter\n"
    assert readme_results.current_block(updated) == "| new |\n"
    assert readme_results.with_block(updated, "| new |\n") == updated  # idempotent


@pytest.mark.parametrize("readme", ["no markers\n", f"{readme_results.END}\n{readme_results.BEGIN}\n",
                                    f"{readme_results.BEGIN}\n{readme_results.BEGIN}\n{readme_results.END}\n"])
def test_missing_or_misplaced_markers_are_an_error(readme):
    with pytest.raises(InputError, match=r"^README.md: needs one line"):
        readme_results.current_block(readme)


def test_check_fails_on_a_stale_readme(tmp_path, capsys):
    for name in ("metrics", "plots/confusion"):
        (tmp_path / name).mkdir(parents=True)
        for path in (ROOT / name).glob("*.json" if name == "metrics" else "*.csv"):
            (tmp_path / name / path.name).write_bytes(path.read_bytes())
    (tmp_path / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "README.md").write_text(readme_results.with_block(readme, "stale\n"))
    assert readme_results.main(["--check", "--root", str(tmp_path)]) == 1
    assert "results block is not what" in capsys.readouterr().err
    assert readme_results.main(["--root", str(tmp_path)]) == 0  # rewrites it
    assert (tmp_path / "README.md").read_text() == readme
