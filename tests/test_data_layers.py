"""The data package imports one way (issue 8): stages -> dataset layouts / faces / labels -> I/O and splits -> core."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / 'forgeloc' / 'data'
# each module and the data modules it may import (None: anything below the stages; not checked further)
LAYER = {'io': 0, 'splits': 0, 'labels': 1, 'faces': 1, 'ffpp': 1, 'shallowfake': 1,
         'extract_frames': 2, 'build_masks': 2, 'dataset': 2, 'sample': 4,   # sample builds raw data from its two parts
         'photos': 2, 'sample_faces': 3, 'sample_shallow': 3}


def data_imports(path: Path) -> set:
    "Names of the forgeloc.data modules that `path` imports, at top level or inside functions."
    out = set()
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom):
            m = n.module or ''
            if n.level == 1 and m:
                out.add(m.split('.')[0])
            elif n.level == 1:
                out |= {a.name for a in n.names}
            elif m.startswith('forgeloc.data.'):
                out.add(m.split('.')[2])
            elif m == 'forgeloc.data':
                out |= {a.name for a in n.names}
    return out - {path.stem}


def test_every_data_module_has_a_layer():
    assert {p.stem for p in DATA.glob('*.py')} - {'__init__'} == set(LAYER)


def test_data_modules_import_only_lower_layers():
    for p in DATA.glob('*.py'):
        if p.stem == '__init__':
            continue
        for dep in data_imports(p):
            assert LAYER[dep] < LAYER[p.stem], f'forgeloc.data.{p.stem} imports forgeloc.data.{dep} (same or higher layer)'


def test_no_import_circle():
    graph = {p.stem: data_imports(p) for p in DATA.glob('*.py') if p.stem != '__init__'}
    state = {}
    def visit(u, stack):
        state[u] = 'open'
        for v in graph.get(u, ()):
            assert state.get(v) != 'open', f"import circle: {' -> '.join(stack + [v])}"
            if v not in state:
                visit(v, stack + [v])
        state[u] = 'done'
    for m in graph:
        if m not in state:
            visit(m, [m])
