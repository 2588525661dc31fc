"""Benchmark: does channels-last memory format or `torch.compile` make CPU training cheaper at the cpu presets?

The default `dvc repro` spends most of its time training eight models at their `cpu` presets (see
`benchmarks/profile_repro.py`), and the engine is within a few per cent of a bare PyTorch loop
(`benchmarks/train_throughput.py`), so what is left to gain is in the kernels. For each model, on one batch of the
preset's size of the sample's training images (the engine's own dataset and collation), this times the bare training
step (forward, loss, backward, Adam step) in three variants, alternating them within one process:
  * default: contiguous NCHW tensors, eager mode;
  * channels_last: model and input in channels-last memory format (what the engine runs on every device);
  * compile: `torch.compile(model)` (inductor), eager loss; its one-off compile time is reported apart.
It reads the data stages' outputs (data/frames, data/masks: run `make repro` first). Each figure is the median
seconds per step over --steps steps after --warmup warm-up steps; the ratios are
default / variant, so > 1 means the variant is faster. Run it with nothing else on the machine.

    .venv/bin/python benchmarks/cpu_layouts.py [--models fcn,mvss] [--steps 10] [--no-compile]
    .venv/bin/python benchmarks/cpu_layouts.py --markdown-only      # table from the last JSON, no timing

Writes benchmarks/results/cpu_layouts.json and .md (the README's `layouts` block, copied by `make readme`).
"""
import argparse
import json
import platform
import statistics
import time

import torch
from torch.utils.data import DataLoader

from forgeloc.core import atomic_write, resolve
from forgeloc.evaluate import recipe_datasets
from forgeloc.models.registry import build_model, call_with, get_recipe, model_names, resolve_config
from forgeloc.train import make_optimizer


def _step(net, crit, opt, b, x):
    opt.zero_grad(set_to_none=True)
    loss = crit(net(x), b)['loss']
    loss.backward()
    opt.step()
    return float(loss)


def bench(model_name, steps, warmup, frames, masks, variants):
    cfg = resolve_config(model_name, 'cpu', {'augment': False})
    recipe = get_recipe(model_name)
    ds = recipe_datasets({**cfg}, frames, masks, splits=('train',))['train']
    b = next(iter(DataLoader(ds, batch_size=cfg['batch_size'], shuffle=False)))
    b = {k: (v if torch.is_tensor(v) else torch.as_tensor(v)) for k, v in b.items()}
    nets, row = {}, {'model': model_name, 'size': cfg['size'], 'batch': cfg['batch_size']}
    for v in variants:
        torch.manual_seed(0)
        net = build_model(cfg).train()
        if v == 'channels_last':
            net = net.to(memory_format=torch.channels_last)
        crit = call_with(recipe.loss, cfg, model=net)
        opt = make_optimizer(net.parameters(), cfg)
        run = torch.compile(net) if v == 'compile' else net
        x = b['image'].contiguous(memory_format=torch.channels_last) if v == 'channels_last' else b['image']
        t0 = time.perf_counter()
        _step(run, crit, opt, b, x)                                  # first step: compiles for `compile`
        row[f'{v}_first_step_s'] = round(time.perf_counter() - t0, 3)
        for _ in range(warmup - 1):
            _step(run, crit, opt, b, x)
        nets[v] = (run, crit, opt, x)
    times = {v: [] for v in variants}
    for _ in range(steps):                                           # alternate the variants step by step
        for v, (run, crit, opt, x) in nets.items():
            t0 = time.perf_counter()
            _step(run, crit, opt, b, x)
            times[v].append(time.perf_counter() - t0)
    med = {v: statistics.median(t) for v, t in times.items()}
    for v in variants:
        row[f'{v}_s_per_step'] = round(med[v], 4)
        if v != 'default':
            row[f'ratio_{v}'] = round(med['default'] / med[v], 3)
    return row


def markdown(doc: dict) -> str:
    "The README table: seconds per step and ratio default / variant per model (> 1: the variant is faster)."
    v = [x for x in doc['variants'] if x != 'default']
    head = ['model', 'input', 'batch', 'default s/step'] + [f'{x} s/step' for x in v] + [f'default / {x}' for x in v]
    if 'compile' in v:
        head.append('compile: first step s')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in doc['results']:
        if 'error' in r:
            lines.append(f"| {r['model']} | " + ' | '.join(['–'] * (len(head) - 2)) + f" | {r['error']} |")
            continue
        cells = [r['model'], str(r['size']), str(r['batch']), f"{r['default_s_per_step']:.3f}"]
        cells += [f"{r[f'{x}_s_per_step']:.3f}" for x in v] + [f"{r[f'ratio_{x}']:.2f}" for x in v]
        if 'compile' in v:
            cells.append(f"{r['compile_first_step_s']:.1f}")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return (f"One training step (forward, loss, backward, Adam) at each model's cpu preset, {doc['machine']}, "
            f"torch {doc['torch']}; medians of {doc.get('steps', '?')} alternating steps:\n\n" + '\n'.join(lines) + '\n')


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default=','.join(model_names()))
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--no-compile', action='store_true')
    ap.add_argument('--frames', default='data/frames')
    ap.add_argument('--masks', default='data/masks')
    ap.add_argument('--out', default='benchmarks/results/cpu_layouts.json')
    ap.add_argument('--markdown-only', action='store_true')
    a = ap.parse_args()
    out = resolve(a.out)
    if a.markdown_only:
        with atomic_write(out.with_suffix('.md')) as f:
            f.write(markdown(json.loads(out.read_text())))
        raise SystemExit(0)
    variants = ['default', 'channels_last'] + ([] if a.no_compile else ['compile'])
    rows = []
    for m in a.models.split(','):
        try:
            r = bench(m, a.steps, a.warmup, resolve(a.frames), resolve(a.masks), variants)
        except Exception as e:                                       # report the model, go on with the next
            r = {'model': m, 'error': f'{type(e).__name__}: {e}'[:300]}
        print(json.dumps(r), flush=True)
        rows.append(r)
    doc = {'machine': f'{platform.machine()}, {torch.get_num_threads()} torch threads', 'torch': torch.__version__,
           'variants': variants, 'steps': a.steps, 'results': rows}
    with atomic_write(out) as f:
        json.dump(doc, f, indent=1)
    with atomic_write(out.with_suffix('.md')) as f:
        f.write(markdown(doc))
