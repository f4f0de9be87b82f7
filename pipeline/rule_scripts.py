"""Every rule resolves to code when the workflow loads, not when its job runs after a download.

Each rule that writes files names its script (`script: "../scripts/<rule>.py"`); the script
must exist, and each name it imports from this package must exist where it is imported from.
Read as text (ast), nothing imported: the check costs milliseconds and loads no torch.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "pipeline"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class RuleCode:
    """One rule as the check sees it: its name, whether it writes files, its script's path."""

    name: str
    writes: bool
    script: Path | None


@functools.cache
def module_file(module: str) -> Path | None:
    """The file of a module of this package (`pipeline.sources.coco`), or None."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@functools.cache
def defined_names(path: Path) -> frozenset[str]:
    """The names a module binds at its top level (functions, classes, assignments, imports)."""
    names = set()
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return frozenset(names)


def import_statements(script: Path) -> str:
    """A script's top-level import statements, as code: what its job loads before its stage."""
    tree = ast.parse(Path(script).read_text(), filename=str(script))
    return "\n".join(
        ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)
    )


def unresolved_imports(script: Path) -> list[str]:
    """What `script` takes from this package that does not exist, one line each: the modules and
    names it imports, and the attributes it reads of an imported module (`crops.extract_crops`)."""
    tree = ast.parse(script.read_text(), filename=str(script))
    problems, modules = [], {}  # alias -> module it names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            wanted = [(a.name, None) for a in node.names if a.name.split(".")[0] == PACKAGE]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            wanted = [(node.module, a.name) for a in node.names]
        else:
            continue
        for module, name in wanted:
            path = module_file(module)
            if path is None:
                problems.append(f"imports {module}, which does not exist")
            elif name and module_file(f"{module}.{name}") is not None:
                modules[name] = f"{module}.{name}"
            elif name and name not in defined_names(path):
                problems.append(f"imports {name} from {module}, which has no such name")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            if module and node.attr not in defined_names(module_file(module)):
                problems.append(f"uses {module}.{node.attr}, which does not exist")
    return problems


def problems(rules: Iterable[RuleCode]) -> list[str]:
    """Every rule that writes files without code to write them, one line each."""
    found = []
    for rule in rules:
        if not rule.writes:
            continue  # a target rule (`all`): inputs only
        if rule.script is None:
            found.append(f"rule {rule.name}: no script")
        elif not rule.script.is_file():
            found.append(f"rule {rule.name}: its script {rule.script} does not exist")
        else:
            found += [
                f"rule {rule.name}: {rule.script}: {p}" for p in unresolved_imports(rule.script)
            ]
    return found


def check_rule_scripts(workflow) -> None:
    """Raise at load when a rule of the Snakemake `workflow` does not resolve to code."""
    rules = [
        RuleCode(
            name=rule.name,
            writes=bool(rule.output),
            script=Path(str(rule.basedir), rule.script).resolve() if rule.script else None,
        )
        for rule in workflow.rules
    ]
    found = problems(rules)
    if found:
        raise ValueError("rules without code:\n  " + "\n  ".join(found))
