"""Each DVC stage's code dependencies, computed from its command: the stage script (or module run
with `python -m`) and every project module it imports, directly or through other project modules,
at module level or inside functions (read with `ast`, nothing is imported).

    python scripts/stage_deps.py          # per stage: modules dvc.yaml misses or lists needlessly
    python scripts/stage_deps.py --write  # rewrite each stage's code deps in dvc.yaml to the closure

`--write` edits the text of dvc.yaml in place (atomically): in each stage's `deps:` list the code
entries (stage scripts and twostream/*.py) are replaced, where the first of them stood, by the
closure (the stage scripts, then the modules, sorted); every other line (data deps, comments, the
rest of the file) stays as it is.

tests/test_stage_deps.py checks dvc.yaml against this on every run.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "twostream"


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (`twostream.data.video` -> twostream/data/video.py), or None."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_inits(module: str, root: Path) -> list[Path]:
    """`__init__.py` of every package a module sits in (importing it runs them all)."""
    parts = module.split(".")
    return [p for i in range(1, len(parts)) if (p := root.joinpath(*parts[:i], "__init__.py")).is_file()]


def _imports(path: Path, root: Path) -> set[str]:
    """Project modules named by the import statements of one file (anywhere in it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    relative_to = ".".join(path.relative_to(root).with_suffix("").parts)
    if path.name == "__init__.py":
        relative_to = relative_to.rsplit(".", 1)[0] + ".__init__"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from ..y import z
                anchor = relative_to.split(".")[:-node.level]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return {m for m in found if module_file(m, root) is not None}


def closure(entry: Path, root: Path = ROOT) -> set[Path]:
    """The entry file and every project module file it imports, transitively."""
    seen: set[Path] = set()
    todo = [entry]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for module in _imports(path, root):
            todo.append(module_file(module, root))
            todo += _package_inits(module, root)
    return seen


def entry_points(cmd: str, root: Path = ROOT) -> list[Path]:
    """Python files a stage command runs: `python script.py ...` and `python -m module ...`
    (a launcher module's own script argument too)."""
    words = shlex.split(cmd)
    entries: list[Path] = []
    for i, word in enumerate(words):
        if word == "-m" and i + 1 < len(words):
            path = module_file(words[i + 1], root)
            if path is not None:
                entries += [path, *_package_inits(words[i + 1], root)]
        elif word.endswith(".py") and (root / word).is_file():
            entries.append(root / word)
    return entries


def stage_commands(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """stage name -> (command, declared deps); a foreach stage counts once (its template)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
        out[name] = (body["cmd"], deps)
    return out


def code_deps(cmd: str, root: Path = ROOT) -> set[str]:
    """The code files (relative paths) a stage command runs."""
    files: set[Path] = set()
    for entry in entry_points(cmd, root):
        files |= closure(entry, root)
    return {str(p.relative_to(root)) for p in files}


def is_code(dep: str) -> bool:
    return dep.endswith(".py") and (dep.startswith(f"{PACKAGE}/") or dep.startswith("stages/"))


def _ordered(code: set[str]) -> list[str]:
    """Code deps as dvc.yaml lists them: the stage scripts, then the project modules, each sorted."""
    return sorted(code, key=lambda d: (not d.startswith("stages/"), d))


_STAGE = re.compile(r"^  (?P<name>[A-Za-z0-9_-]+):\s*$")
_ITEM = re.compile(r"^(?P<indent>\s*)- (?P<value>\S.*?)\s*$")


def write_code_deps(text: str, root: Path = ROOT) -> str:
    """dvc.yaml's text with every stage's code deps set to the import closure of its command.

    A text edit, not a YAML round-trip: only the list items that are code deps change (replaced, at the
    place of the first, by the closure); a stage without one gets the closure at the top of its deps."""
    commands = stage_commands_of(text)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    section, stage = None, None
    in_deps, deps_indent, written = False, None, False
    for line in lines:
        match = _STAGE.match(line)
        if line.strip() and not line[0].isspace() and not line.startswith("#"):
            section, stage, in_deps = line.split(":")[0], None, False  # a top-level key: stages, plots, ...
        elif match and section == "stages" and match["name"] in commands:
            stage, in_deps = match["name"], False
        elif line.strip() and not line.startswith("    ") and not line.lstrip().startswith("#"):
            stage, in_deps = None, False
        if stage is not None and re.match(r"^\s+deps:\s*$", line):
            out.append(line)
            in_deps, deps_indent, written = True, None, False
            continue
        if in_deps:
            item = _ITEM.match(line)
            if item and (deps_indent is None or item["indent"] == deps_indent):
                deps_indent = item["indent"]
                if is_code(item["value"]):
                    if not written:
                        out += [f"{deps_indent}- {d}\n" for d in _ordered(code_deps(commands[stage], root))]
                        written = True
                    continue
                if not written:
                    out += [f"{deps_indent}- {d}\n" for d in _ordered(code_deps(commands[stage], root))]
                    written = True
                out.append(line)
                continue
            in_deps = False
        out.append(line)
    return "".join(out)


def stage_commands_of(text: str) -> dict[str, str]:
    """stage name -> command, of a dvc.yaml's text (top-level stages, not foreach templates)."""
    stages = yaml.safe_load(text)["stages"]
    return {name: stage["cmd"] for name, stage in stages.items() if "cmd" in stage}


def check(dvc_yaml: Path = ROOT / "dvc.yaml", root: Path = ROOT) -> list[str]:
    """One line per code dep dvc.yaml misses or lists needlessly."""
    problems = []
    for name, (cmd, declared) in stage_commands(dvc_yaml).items():
        needed = code_deps(cmd, root)
        listed = {d for d in declared if is_code(d)}
        problems += [f"{name}: imports {m} but dvc.yaml does not list it" for m in sorted(needed - listed)]
        problems += [f"{name}: dvc.yaml lists {e}, which the stage does not import" for e in sorted(listed - needed)]
    return problems


def write(dvc_yaml: Path = ROOT / "dvc.yaml", root: Path = ROOT) -> bool:
    """Rewrite dvc.yaml's code deps (atomically); True if the file changed."""
    text = dvc_yaml.read_text()
    new = write_code_deps(text, root)
    if new == text:
        return False
    fd, tmp = tempfile.mkstemp(dir=dvc_yaml.parent, prefix=f".{dvc_yaml.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.chmod(tmp, dvc_yaml.stat().st_mode & 0o777)
    os.replace(tmp, dvc_yaml)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps to the import closure")
    parser.add_argument("--dvc-yaml", type=Path, default=ROOT / "dvc.yaml", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.dvc_yaml)
        print(f"{args.dvc_yaml}: code deps {'rewritten' if changed else 'already exact'}")
    problems = check(args.dvc_yaml)
    for problem in problems:
        print(problem)
    print("all stages declare exactly the code they run" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
