"""Each DVC stage's code dependencies, computed from its command: the stage script (or module run
with `python -m`) and every project module it imports, directly or through other project modules,
at module level or inside functions (read with `ast`, nothing is imported).

    python scripts/stage_deps.py          # per stage: modules dvc.yaml misses or lists needlessly

tests/test_stage_deps.py checks dvc.yaml against this on every run.
"""
from __future__ import annotations

import ast
import shlex
import sys
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


def main() -> int:
    problems = 0
    for name, (cmd, declared) in stage_commands().items():
        needed = code_deps(cmd)
        listed = {d for d in declared if is_code(d)}
        for missing in sorted(needed - listed):
            print(f"{name}: imports {missing} but dvc.yaml does not list it")
            problems += 1
        for extra in sorted(listed - needed):
            print(f"{name}: dvc.yaml lists {extra}, which the stage does not import")
            problems += 1
    print("all stages declare exactly the code they run" if not problems else f"{problems} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
