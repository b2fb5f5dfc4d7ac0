"""dvc.yaml declares, for every stage, exactly the project code the stage runs.

The import closure of each stage's command is computed statically (ast, scripts/stage_deps.py):
its script, and every twostream module it imports directly or through other modules, at module
level or inside functions. A module missing from a stage's deps would let DVC call a stale result
up to date; a module listed but not imported would re-run the stage for nothing.
"""
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import stage_deps  # noqa: E402

STAGES = stage_deps.stage_commands()


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_exactly_the_modules_it_imports(stage):
    cmd, declared = STAGES[stage]
    needed = stage_deps.code_deps(cmd)
    listed = {d for d in declared if stage_deps.is_code(d)}
    missing = sorted(needed - listed)
    extra = sorted(listed - needed)
    assert not missing, f"stage {stage} imports {', '.join(missing)} but dvc.yaml does not declare it"
    assert not extra, f"stage {stage} declares {', '.join(extra)}, which it does not import"


def test_every_stage_runs_a_project_script():
    for stage, (cmd, _) in STAGES.items():
        entries = stage_deps.entry_points(cmd)
        assert entries, f"stage {stage}: no Python entry point found in {cmd!r}"


def test_closure_follows_function_level_and_package_imports(tmp_path):
    """The closure walker itself, on a small fake package."""
    pkg = tmp_path / "twostream"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("import json\nfrom twostream import b\n")
    (pkg / "b.py").write_text(textwrap.dedent("""
        def late():
            from twostream.sub.c import thing
            return thing
    """))
    (pkg / "sub" / "c.py").write_text("from . import d\nthing = 1\n")
    (pkg / "sub" / "d.py").write_text("")
    (pkg / "unused.py").write_text("")
    script = tmp_path / "stages" / "s.py"
    script.parent.mkdir()
    script.write_text("from twostream.a import *\n")
    found = {str(p.relative_to(tmp_path)) for p in stage_deps.closure(script, tmp_path)}
    assert found == {"stages/s.py", "twostream/__init__.py", "twostream/a.py", "twostream/b.py",
                     "twostream/sub/__init__.py", "twostream/sub/c.py", "twostream/sub/d.py"}


def test_training_code_does_not_import_evaluation_code():
    for stage in ("stanford40_frames", "hmdb51_frames", "hmdb51_flow", "hmdb51_twostream"):
        deps = stage_deps.code_deps(STAGES[stage][0])
        assert "twostream/evaluate.py" not in deps and "twostream/plots.py" not in deps, stage


def test_error_types_do_not_pull_in_the_library():
    deps = stage_deps.closure(ROOT / "twostream" / "cli.py")
    assert {str(p.relative_to(ROOT)) for p in deps} == {
        "twostream/__init__.py", "twostream/cli.py", "twostream/errors.py", "twostream/params.py"}


def test_write_sets_the_code_deps_and_changes_nothing_else(tmp_path):
    """--write on a copy of dvc.yaml with one module missing and one needless: afterwards the check passes,
    and the file is dvc.yaml again, byte for byte (comments, data deps, order, the rest of the file)."""
    original = (ROOT / "dvc.yaml").read_text()
    assert not stage_deps.check(ROOT / "dvc.yaml"), "dvc.yaml itself must be exact for this test"
    missing = "      - twostream/data/manifests.py\n"
    start = original.index("  split:\n")
    assert original.count(missing, start, original.index("  pad_resize:\n")) == 1
    broken = original[:start] + original[start:].replace(missing, "", 1)
    stage = broken.index("  evaluate:\n")
    broken = broken[:stage] + broken[stage:].replace("      - twostream/errors.py\n",
                                                     "      - twostream/errors.py\n      - twostream/launch.py\n", 1)
    broken = broken.replace("  download:\n", "  # a comment kept as it is\n  download:\n", 1)
    copy = tmp_path / "dvc.yaml"
    copy.write_text(broken)
    assert sorted(stage_deps.check(copy)) == [
        "evaluate: dvc.yaml lists twostream/launch.py, which the stage does not import",
        "split: imports twostream/data/manifests.py but dvc.yaml does not list it"]
    assert stage_deps.main(["--write", "--dvc-yaml", str(copy)]) == 0
    assert not stage_deps.check(copy)
    assert copy.read_text() == original.replace("  download:\n", "  # a comment kept as it is\n  download:\n", 1)
    assert not stage_deps.write(copy), "a second --write changes nothing"


def test_write_puts_the_closure_first_in_a_stage_without_code_deps():
    text = ("stages:\n  s:\n    cmd: python stages/check_params.py\n    deps:\n      - params.yaml\n"
            "    outs:\n      - out\n")
    written = stage_deps.write_code_deps(text)
    expected_code = "".join(f"      - {d}\n" for d in stage_deps._ordered(
        stage_deps.code_deps("python stages/check_params.py")))
    assert written == ("stages:\n  s:\n    cmd: python stages/check_params.py\n    deps:\n" + expected_code
                       + "      - params.yaml\n    outs:\n      - out\n")
