"""Build the book of the lessons: `make docs` (python tools/build_book.py [--only NAME ...] [--allow-errors]).

1. Every notebook that nbs/_book/toc.yml names is executed as `nbdev_test` executes it: in a fresh IPython shell
   (execnb), from nbs/, skipping the cells flagged with settings.ini's `tst_flags` (`#| slow` cells read the data
   of a pipeline run; `#| dlib` cells run when dlib is installed), and written with its outputs to _book/src/.
   Cells marked `#| hide` or `#| default_exp` run but are left out of the page; `#| export` cells are tagged
   `export` (the page labels them); a cell not run gets a note saying why. The notebooks in nbs/ stay untouched.
2. The front page (index) gets the hidden table of contents, by parts in reading order, from toc.yml.
3. `sphinx-build -c nbs/_book _book/src _book/html` renders them (then moved to _docs/) (MyST-NB, sphinx-book-theme) without executing again.

An error in a cell is kept on its page and printed; the build then exits 1 (0 with --allow-errors).
"""
from __future__ import annotations

import argparse
import configparser
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NBS, CONF = ROOT / 'nbs', ROOT / 'nbs' / '_book'
STAGE, SITE = ROOT / '_book', ROOT / '_docs'
SRC = STAGE / 'src'
HIDDEN = {'hide', 'default_exp', 'exporti'}
WHY_NOT_RUN = {'slow': 'it is marked `slow`: it needs the data of a pipeline run (`make repro`) or minutes of CPU, '
                        'and `nbdev_test --flags slow` runs it',
               'dlib': 'it needs the optional `landmarks` extra (`make install-landmarks`)',
               'cuda': 'it needs a GPU'}
ANSI = re.compile(r'\x1B(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])')


def read_toc(path: Path = CONF / 'toc.yml') -> dict:
    "The book's parts: {'root': 'index', 'parts': [{'caption': ..., 'chapters': [{'file': ..., 'title': ...}]}]}"
    return yaml.safe_load(path.read_text())


def toc_files(toc: dict) -> list[str]:
    "Every page the toc names, the front page first."
    return [toc['root']] + [c['file'] for p in toc['parts'] for c in p['chapters']]


def skip_flags() -> set[str]:
    "settings.ini's tst_flags, less dlib when dlib imports (as `make test` runs nbdev_test --flags dlib)."
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'settings.ini')
    flags = set(cfg['DEFAULT'].get('tst_flags', '').split())
    try:
        import dlib  # noqa: F401
        flags.discard('dlib')
    except ImportError:
        pass
    return flags


def _note(flag: str, after: str):
    from execnb.nbio import mk_cell
    c = mk_cell(f'```{{admonition}} Not run in the book\n:class: not-run-note\n'
                f'The cell above is shown without its output: {WHY_NOT_RUN.get(flag, f"it is flagged `{flag}`")}.\n```',
                cell_type='markdown')
    c['id'] = f'{after}-not-run'
    return c


WIDGET = 'application/vnd.jupyter.widget-view+json'
WIDGET_NOTE = '*An interactive widget (ipywidgets): it works in JupyterLab, where the notebook runs; a page has no kernel.*'


def _clean_outputs(cell):
    "Strip ANSI colours; a widget view (the page has no kernel) becomes a note, not its repr."
    for o in cell.get('outputs', []):
        if 'text' in o: o['text'] = [ANSI.sub('', t) for t in o['text']]
        if o.get('traceback'): o['traceback'] = [ANSI.sub('', t) for t in o['traceback']]
        data = o.get('data')
        if data and WIDGET in data: o['data'] = {'text/markdown': [WIDGET_NOTE]}
    cell['outputs'] = [o for o in cell.get('outputs', []) if o.get('output_type') != 'display_data' or o.get('data')]


def execute(name: str, flags: set[str], dest_dir: str) -> tuple[str, list[int], float]:
    "Run nbs/`name`.ipynb as nbdev_test does, write the page's notebook to `dest_dir`; (name, error cells, seconds)."
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import extract_directives
    os.environ['IN_TEST'] = '1'
    start, src = time.time(), NBS / f'{name}.ipynb'
    nb = read_nb(src)
    for c in nb.cells: c.directives_ = extract_directives(c, remove=True) if c.cell_type == 'code' else {}

    def not_run(c):
        if c.cell_type != 'code' or 'nbdev_export(' in c.source: return True
        d = c.directives_
        if d.get('eval:', [''])[0].lower() == 'false': return True
        return bool(flags & d.keys())

    shell = CaptureShell(src)
    with working_directory(src.parent): shell.run_all(nb, exc_stop=False, preproc=not_run)
    cells, errors = [], []
    for c in nb.cells:
        d = c.directives_
        if c.cell_type == 'code':
            if HIDDEN & d.keys() or 'nbdev_export(' in c.source:
                if any(o.get('output_type') == 'error' for o in c.get('outputs', [])): errors.append(c.idx_)
                continue
            c.execution_count = None
            tags = list(c.metadata.get('tags', []))
            if 'export' in d: tags.append('export')
            flag = next((f for f in flags if f in d), None)
            if flag: tags.append('not-run')
            if tags: c.metadata['tags'] = tags
            _clean_outputs(c)
            if any(o.get('output_type') == 'error' for o in c.get('outputs', [])): errors.append(c.idx_)
            cells.append(c)
            if flag: cells.append(_note(flag, c.get('id', str(c.idx_))))
        else: cells.append(c)
    nb.cells = cells
    nb.metadata['language_info'] = {'name': 'python', 'pygments_lexer': 'ipython3'}
    write_nb(nb, Path(dest_dir) / src.name)
    return name, errors, time.time() - start


def toctree(toc: dict) -> str:
    "The hidden toctrees of the front page: one per part, in reading order, with the titles of toc.yml."
    blocks = []
    for p in toc['parts']:
        lines = '\n'.join(f"{c['title']} <{c['file']}>" for c in p['chapters'])
        blocks.append(f"```{{toctree}}\n:hidden:\n:caption: {p['caption']}\n\n{lines}\n```")
    return '\n\n'.join(blocks)


def add_toc(index: Path, toc: dict):
    "Append the toctrees to the executed front page."
    from execnb.nbio import mk_cell, read_nb, write_nb
    nb = read_nb(index)
    cell = mk_cell(toctree(toc), cell_type='markdown')
    cell['id'] = 'book-toctree'
    nb.cells.append(cell)
    write_nb(nb, index)


def stage(names: list[str], jobs: int) -> dict[str, list[int]]:
    "Execute `names` into _book/src (in parallel, one fresh process per notebook); their error cells."
    if SRC.exists(): shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    if (STAGE / 'figures').exists(): shutil.rmtree(STAGE / 'figures')
    shutil.copytree(ROOT / 'figures', STAGE / 'figures')      # so `../figures/x.png` resolves beside _book/src
    flags, errors = skip_flags(), {}
    print(f'executing {len(names)} notebooks ({jobs} at a time, not running cells flagged {sorted(flags)})', flush=True)
    with ProcessPoolExecutor(jobs, mp_context=get_context('spawn'), max_tasks_per_child=1) as ex:
        for name, errs, secs in ex.map(execute, names, [flags] * len(names), [str(SRC)] * len(names)):
            print(f'  {name}: {secs:.0f} s' + (f', ERRORS in cells {errs}' if errs else ''), flush=True)
            if errs: errors[name] = errs
    return errors


def render(jobs: int, strict: bool = False) -> int:
    "sphinx-build the staged notebooks into _book/html (MyST-NB's jupyter_execute/ and the doctrees stay in _book/), then move it to _docs; its exit code."
    html = STAGE / 'html'
    for d in (html, STAGE / 'doctrees', STAGE / 'jupyter_execute'): shutil.rmtree(d, ignore_errors=True)
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-j', str(jobs), '-c', str(CONF), '-d', str(STAGE / 'doctrees'),
           str(SRC), str(html)]
    if strict: cmd.insert(-2, '-W')
    rc = subprocess.run(cmd, cwd=STAGE).returncode
    if rc == 0:
        shutil.rmtree(SITE, ignore_errors=True)
        shutil.move(html, SITE)
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--only', nargs='*', help='execute only these notebooks (names without .ipynb); the rest of the toc is left out')
    ap.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument('--allow-errors', action='store_true', help='exit 0 even when a cell raised')
    ap.add_argument('--strict', action='store_true', help="turn Sphinx's warnings into errors")
    a = ap.parse_args(argv)
    toc, t0 = read_toc(), time.time()
    names = toc_files(toc)
    if a.only: names = [n for n in names if n in a.only or n == toc['root']]
    missing = [n for n in names if not (NBS / f'{n}.ipynb').exists()]
    if missing: sys.exit(f'toc.yml names notebooks that nbs/ lacks: {missing}')
    errors = stage(names, a.jobs)
    if a.only: toc = {**toc, 'parts': [{**p, 'chapters': [c for c in p['chapters'] if c['file'] in names]} for p in toc['parts']]}
    toc['parts'] = [p for p in toc['parts'] if p['chapters']]
    add_toc(SRC / f"{toc['root']}.ipynb", toc)
    t1 = time.time()
    rc = render(a.jobs, a.strict)
    print(f'book: {SITE.relative_to(ROOT)}/index.html (execute {t1 - t0:.0f} s, render {time.time() - t1:.0f} s)')
    if errors:
        print('cells raised in: ' + ', '.join(f'{n} {e}' for n, e in errors.items()), file=sys.stderr)
        if not a.allow_errors: return 1
    return rc


if __name__ == '__main__':
    sys.exit(main())
