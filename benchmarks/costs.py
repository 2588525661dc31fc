"""Benchmark: what each registered model costs — parameters, FLOPs per image and CPU latency per image.

For every model of the registry, at its paper input size and at the cpu preset's size:
  * parameters: all and trainable (`numel`);
  * FLOPs per image of one inference forward pass, counted with `torch.utils.flop_counter.FlopCounterMode`
    (PyTorch's own counter: a multiply-add is 2 FLOPs; convolutions, matmuls and the attention kernels are
    counted, element-wise operations are not, as in fvcore and IMDL-BenCo's tables);
  * CPU latency per image: the median over --runs timed forward passes of batch 1 under `torch.inference_mode`
    (after --warmup untimed passes), and the first-to-third quartile spread. Latency depends on the machine and on
    whatever else runs beside it: run it with nothing else running; the FLOPs and parameters do not depend on it.

    .venv/bin/python benchmarks/costs.py [--models fcn,upernet] [--presets paper,cpu] [--runs 7] [--no-latency]

Writes benchmarks/results/costs.json and the Markdown table benchmarks/results/costs.md, which `make readme` puts in
the README beside the comparison.
"""
import argparse
import json
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from forgeloc.core import atomic_write, resolve
from forgeloc.models.registry import build_model, model_names, resolve_config


def count_flops(net, x) -> int:
    "FLOPs of one forward pass of `net` on `x` (PyTorch's FlopCounterMode; a multiply-add counts 2)."
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(x)
    return int(counter.get_total_flops())


def latency(net, x, runs: int, warmup: int) -> tuple[float, float, float]:
    "Median and quartiles of the wall-clock seconds of `runs` forward passes (after `warmup`)."
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            net(x)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else times * 3
    return statistics.median(times), q[0], q[2]


def cost(model: str, preset: str, runs: int, warmup: int, timed: bool) -> dict:
    cfg = resolve_config(model, preset)
    torch.manual_seed(0)
    net = build_model(cfg).eval()
    size = int(cfg['size'])
    x = torch.rand(1, 3, size, size)
    row = {'model': model, 'preset': preset, 'size': size,
           'params': sum(p.numel() for p in net.parameters()),
           'trainable': sum(p.numel() for p in net.parameters() if p.requires_grad),
           'gflops': round(count_flops(net, x) / 1e9, 3)}
    if timed:
        med, q1, q3 = latency(net, x, runs, warmup)
        row.update(latency_ms=round(1e3 * med, 1), latency_q1_ms=round(1e3 * q1, 1), latency_q3_ms=round(1e3 * q3, 1))
    return row


def table(rows: list[dict]) -> str:
    "The Markdown cost table: one row per model, its presets side by side (a preset may also change the widths)."
    by = {}
    for r in rows:
        by.setdefault(r['model'], {})[r['preset']] = r
    presets = sorted({r['preset'] for r in rows}, key=['paper', 'cpu'].index)
    head = '| model | ' + ' | '.join(f'{p}: size | {p}: parameters (M) | {p}: GFLOPs | {p}: CPU ms/image' for p in presets) + ' |'
    lines = [head, '|' + '---|' * (1 + 4 * len(presets))]
    for m, d in by.items():
        cells = [m]
        for p in presets:
            r = d.get(p, {})
            lat = f"{r['latency_ms']} ({r['latency_q1_ms']}–{r['latency_q3_ms']})" if 'latency_ms' in r else '–'
            cells += [str(r.get('size', '–')), f"{r['params'] / 1e6:.2f}" if r else '–', str(r.get('gflops', '–')), lat]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', default=','.join(model_names()))
    ap.add_argument('--presets', default='paper,cpu')
    ap.add_argument('--runs', type=int, default=7)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--no-latency', action='store_true', help='count parameters and FLOPs only')
    ap.add_argument('--out', default='benchmarks/results/costs.json')
    a = ap.parse_args()
    rows = []
    for m in a.models.split(','):
        for p in a.presets.split(','):
            rows.append(cost(m, p, a.runs, a.warmup, not a.no_latency))
            print(rows[-1], flush=True)
    out = resolve(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as f:
        json.dump({'machine': f'{platform.machine()}, {torch.get_num_threads()} torch threads', 'torch': torch.__version__,
                   'device': 'cpu', 'runs': a.runs, 'results': rows}, f, indent=1)
    md = out.with_suffix('.md')
    with atomic_write(md) as f:
        f.write(table(rows) + '\n')
    print(table(rows))
    print(f'wrote {out} and {md} (make readme puts the table in the README)')


if __name__ == '__main__':
    main()
