"""The package's shape, checked: no import cycle anywhere, and no module past ~400 lines."""

from __future__ import annotations

from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    sizes = {p.relative_to(PACKAGE.parent): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {str(p): n for p, n in sizes.items() if n > MAX_LINES} == {}


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("newsletter", exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    cycles = []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            # A cycle through this edge: the imported module leads back here.
            if graph.chain_exists(importer=imported, imported=module):
                chain = graph.find_shortest_chain(importer=imported, imported=module) or ()
                cycles.append(" -> ".join((module, *chain)))
    assert cycles == []
