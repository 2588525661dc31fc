"""Where `dvc repro`'s time goes, from what papermill records in the executed stage notebooks (runs/**/*.ipynb).

For every stage notebook papermill writes the wall-clock start and end of the whole run and of every cell. The
difference between the run and the sum of its cells is what the stage spends outside its cells: starting the
kernel, importing, papermill's own bookkeeping. The report groups the cells by what they do (imports, the stage's
work, writing outputs) and sums per stage kind (train, evaluate, data, compare/figures/reports).

    .venv/bin/python benchmarks/profile_repro.py                 # table on stdout
    .venv/bin/python benchmarks/profile_repro.py --json benchmarks/results/profile_repro.json
"""
from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _t(s):
    return datetime.fromisoformat(s.replace('Z', '+00:00')) if s else None


def notebook_profile(path: Path) -> dict:
    "Run time of one executed notebook, the sum of its cells, its slowest cells and the time outside cells."
    nb = json.loads(path.read_text())
    pm = nb.get('metadata', {}).get('papermill', {})
    cells = []
    for i, c in enumerate(nb['cells']):
        m = c.get('metadata', {}).get('papermill', {})
        if c.get('cell_type') == 'code' and m.get('duration') is not None:
            first = ''.join(c['source']).strip().splitlines()[:1]
            cells.append({'cell': i, 'seconds': round(float(m['duration']), 2), 'first_line': first[0][:80] if first else ''})
    start, end = _t(pm.get('start_time')), _t(pm.get('end_time'))
    total = (end - start).total_seconds() if start and end else pm.get('duration')
    in_cells = sum(c['seconds'] for c in cells)
    return {'notebook': str(path.relative_to(ROOT)), 'start': pm.get('start_time'), 'seconds': round(total or 0, 2),
            'in_cells': round(in_cells, 2), 'outside_cells': round((total or 0) - in_cells, 2),
            'slowest': sorted(cells, key=lambda c: -c['seconds'])[:3]}


def kind(name: str) -> str:
    p = Path(name)
    if p.parent.name in ('train', 'evaluate', 'robustness', 'evaluate_weights', 'quality_test'):
        return p.parent.name
    return p.stem


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--runs', default='runs')
    ap.add_argument('--json', default='')
    a = ap.parse_args(argv)
    profs = [notebook_profile(p) for p in sorted((ROOT / a.runs).rglob('*.ipynb'))]
    profs = [p for p in profs if p['start']]
    profs.sort(key=lambda p: p['start'])
    kinds = {}
    for p in profs:
        k = kinds.setdefault(kind(p['notebook']), {'n': 0, 'seconds': 0.0, 'outside_cells': 0.0})
        k['n'] += 1; k['seconds'] += p['seconds']; k['outside_cells'] += p['outside_cells']
    first, last = _t(profs[0]['start']), max(_t(p['start']) for p in profs)
    span = (last - first).total_seconds() + profs[-1]['seconds']
    print(f"{len(profs)} stage notebooks; from the first start to the last end: {span:.0f} s; in notebooks: "
          f"{sum(p['seconds'] for p in profs):.0f} s (outside their cells: {sum(p['outside_cells'] for p in profs):.0f} s)")
    print(f"{'stage':36s} {'s':>7s} {'outside cells':>14s}  slowest cell")
    for p in profs:
        s = p['slowest'][0] if p['slowest'] else {'seconds': 0, 'first_line': ''}
        print(f"{p['notebook'][5:]:36s} {p['seconds']:7.1f} {p['outside_cells']:14.1f}  {s['seconds']:6.1f} s  {s['first_line']}")
    print('\nby kind:')
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]['seconds']):
        print(f"  {k:16s} {v['n']:3d} notebooks {v['seconds']:8.1f} s (outside cells {v['outside_cells']:.1f} s)")
    if a.json:
        out = {'span_seconds': round(span, 1), 'notebooks': profs, 'by_kind': kinds}
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(out, indent=1) + '\n')


if __name__ == '__main__':
    main()
