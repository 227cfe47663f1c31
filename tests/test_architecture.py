"""The package layering of docs/architecture.md §5: imports point down, and there are no cycles.

Every import of every module counts, including imports inside functions.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "csst_espnet"

# docs/architecture.md §5, top to bottom: a package may import only packages of its rank or below
RANKS = {
    "bin": 0,
    "recipe": 1, "analysis": 1, "export": 1, "benchmarks": 1,
    "inference": 2,
    "tasks": 3,
    "train": 4, "models": 4,
    "losses": 5,
    "frontend": 6, "encoder": 6, "projector": 6, "llm": 6, "synth": 6,
    "text": 7, "corpora": 7,
    "data": 8, "metrics": 8,
    "utils": 9,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set:
    """csst_espnet modules that ``path`` imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("csst_espnet."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("csst_espnet."):
            found.add(node.module)
    return found


def import_graph() -> dict:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def package_of(module: str) -> str:
    return module.split(".")[1]


def test_every_package_has_a_rank():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(RANKS)


def test_imports_point_down():
    upward = [
        f"{module} imports {imported}"
        for module, imported_set in import_graph().items() if module.count(".") >= 1
        for imported in imported_set
        if RANKS[package_of(imported)] < RANKS[package_of(module)]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = import_graph()
    state = {}  # module -> "open" while on the DFS stack, "done" after

    def visit(module, stack):
        state[module] = "open"
        for nxt in sorted(graph.get(module, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, stack + [nxt])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


def test_losses_import_no_task():
    """The transition loss once imported the task (a cycle through the loss registry)."""
    graph = import_graph()
    seen, todo = set(), ["csst_espnet.losses.transition"]
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        todo.extend(graph[module])
    assert not any(m.startswith("csst_espnet.tasks") for m in seen), sorted(seen)


def test_the_checks_catch_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    pkg = tmp_path / "csst_espnet"
    for name, body in {"losses/a.py": "from csst_espnet.tasks.b import x\n",
                       "tasks/b.py": "import csst_espnet.losses.a\n"}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(body)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    import pytest

    with pytest.raises(AssertionError, match="losses.a imports csst_espnet.tasks.b"):
        test_imports_point_down()
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycles()
