"""The package's shape: no import circle, imports flowing one way (the data flow of the design), one
room per concern, no folder holding more than a third of the code."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "diffusemix_bench"
NAME = PACKAGE.name


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The package module that ``name`` (a module, or a name inside one) lives in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Every import of every module, those inside functions included (they run as well, only later)."""
    graph = {}
    for module, (path, is_init) in MODULES.items():
        here = module if is_init else module.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps.update(_owner(a.name) for a in node.names if a.name.split(".")[0] == NAME)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    target = f"{base}.{node.module}" if node.module else base
                elif (node.module or "").split(".")[0] == NAME:
                    target = node.module
                else:
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    deps.add(full if full in MODULES else _owner(target))
        deps.discard(None)
        deps.discard(module)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others():
    assert cycles(import_graph()) == []


# The rooms of the design (shared/design/architecture.md) and the rooms each may import. Every room
# may use the foundation: errors.py, config.py (the typed schemas), progress.py, files.py and quiet.py
# (library messages left out of the output). Only the entry layer (cli.py, preflight.py with
# compose.py and slurm.py, report_cli.py and the top-level scripts) sits above them all.
ROOMS = {
    "data": set(),
    "models": set(),
    "generation": {"data"},
    "augment": {"data", "generation"},
    "augment.diffusemix": {"augment", "data", "generation"},
    # CAM and hidden-state mixing read the model's structure.
    "augment.mixing": {"augment", "models"},
    "augment.policies": {"augment"},
    "training": {
        "augment",
        "augment.diffusemix",
        "augment.mixing",
        "augment.policies",
        "models",
        "data",
        "generation",
        # After fit, the selected checkpoint is attacked (eval.fgsm, eval.pgd).
        "robustness",
    },
    "robustness": {"models", "data"},
    # A robustness number's settings as the attacks define them (what eval.* measures), and the
    # names of the orders a batch-limited evaluation reads a split in (data.order, NumPy only).
    "reporting": {"robustness", "data"},
}
ENTRY = {"cli", "preflight", "compose", "slurm", "report_cli"}
FOUNDATION = {"errors", "config", "progress", "files", "quiet", "commands", "signals"}
# config.py reads the paper's prompt list (the prompt library's defaults); the augmentation schemas
# live in config.py itself, so composing a config imports no torch.
FOUNDATION_READS = {"config": {"generation"}}


def _room(module: str) -> str:
    parts = module.split(".")[1:]
    if len(parts) >= 2 and ".".join(parts[:2]) in ROOMS:
        return ".".join(parts[:2])
    return parts[0] if parts else ""


def test_imports_flow_one_way_between_rooms():
    wrong = []
    for module, deps in import_graph().items():
        src = _room(module)
        for dep in deps:
            dst = _room(dep)
            if dst == src or dst in FOUNDATION or src in ENTRY:
                continue
            if src in ROOMS:
                allowed = ROOMS[src]
            elif src in FOUNDATION:
                allowed = FOUNDATION_READS.get(src, set())
            else:
                allowed = set()
            if dst not in allowed and dst.split(".")[0] not in allowed:
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


def test_augment_top_holds_only_the_interface_the_registry_and_shared_pieces():
    top = {p.name for p in (PACKAGE / "augment").glob("*.py")}
    assert top == {"__init__.py", "base.py", "registry.py", "fractals.py"}
    subpackages = {p.parent.name for p in (PACKAGE / "augment").glob("*/__init__.py")}
    assert subpackages == {"diffusemix", "mixing", "policies"}
    for sub in subpackages:
        doc = ast.get_docstring(ast.parse((PACKAGE / "augment" / sub / "__init__.py").read_text()))
        assert doc and "\n" not in doc.strip(), f"augment/{sub}/__init__.py needs a one-line docstring"


def test_no_folder_holds_more_than_a_third_of_the_package():
    lines: dict[Path, int] = {}
    for path in PACKAGE.rglob("*.py"):
        lines[path.parent] = lines.get(path.parent, 0) + len(path.read_text().splitlines())
    total = sum(lines.values())
    heavy = {str(folder.relative_to(PACKAGE.parent)): n for folder, n in lines.items() if n > total / 3}
    assert heavy == {}, f"of {total} lines"


def test_no_leading_underscore_grab_bags():
    private = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("_*.py") if p.name != "__init__.py")
    assert private == [], "name each file by what it holds"
