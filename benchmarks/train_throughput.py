"""Benchmark: training throughput of every registered model, engine vs a bare PyTorch loop.

For each model at its paper input size (or `--preset cpu`), on the same images, batch, loss and optimizer:
  * engine: `forgeloc.train.train_one_epoch` over a DataLoader of the recipe's ForgeryDataset (normalization,
    random flips, collation, per-term loss bookkeeping, the NaN check, tqdm disabled) — what the train stage runs;
  * bare: a plain loop over the same batches already collated as tensors: forward, loss, backward, Adam step.
Runs alternate engine/bare; each figure is the median images/s over --runs runs of --steps steps (after one
warm-up step), and the ratio engine/bare is taken within this one process (the engine's overhead; goal >= 0.9).

    .venv/bin/python benchmarks/train_throughput.py [--models fcn,upernet] [--preset paper] [--batch 2] [--steps 3] [--runs 3]
"""
import argparse
import json
import platform
import statistics
import time

import torch
from torch.utils.data import DataLoader, RandomSampler, Subset

from forgeloc.core import atomic_write, resolve
from forgeloc.models.registry import build_model, call_with, get_recipe, model_names, resolve_config
from forgeloc.evaluate import recipe_datasets
from forgeloc.train import make_optimizer, train_one_epoch


def bench(model_name, preset, batch, steps, runs, frames, masks):
    cfg = resolve_config(model_name, preset, {'batch_size': batch, 'augment': True})
    recipe = get_recipe(model_name)
    torch.manual_seed(0)
    net = build_model(cfg).train()
    crit = call_with(recipe.loss, cfg, model=net)
    opt = make_optimizer(net.parameters(), cfg)
    full = recipe_datasets({**cfg}, frames, masks, splits=('train',))['train']
    n = batch * steps
    ds = Subset(full, range(n))
    ds.labels = full.labels[:n]
    g = torch.Generator().manual_seed(0)
    loader = DataLoader(ds, batch_size=batch, sampler=RandomSampler(ds, generator=g), drop_last=True)
    batches = [{k: (v if torch.is_tensor(v) else torch.as_tensor(v)) for k, v in b.items()} for b in loader]

    def bare():
        for b in batches:
            opt.zero_grad(set_to_none=True)
            loss = crit(net(b['image']), b)['loss']
            loss.backward()
            opt.step()

    def engine():
        train_one_epoch(net, loader, crit, opt, 'cpu', amp=False, progress=False)

    bare_one = lambda: (lambda b: (opt.zero_grad(), crit(net(b['image']), b)['loss'].backward(), opt.step()))(batches[0])
    bare_one()                                                    # warm-up (allocator, oneDNN kernels)
    times = {'engine': [], 'bare': []}
    for _ in range(runs):
        for name, fn in (('engine', engine), ('bare', bare)):
            t0 = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t0)
    ips = {k: n / statistics.median(v) for k, v in times.items()}
    return {'model': model_name, 'preset': preset, 'size': cfg['size'], 'batch': batch, 'steps': steps, 'runs': runs,
            'n_params': sum(p.numel() for p in net.parameters()),
            'engine_images_per_s': round(ips['engine'], 3), 'bare_images_per_s': round(ips['bare'], 3),
            'ratio': round(ips['engine'] / ips['bare'], 3), 'seconds': {k: [round(t, 3) for t in v] for k, v in times.items()}}


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default=','.join(model_names()))
    ap.add_argument('--preset', default='paper')
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--steps', type=int, default=3)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--frames', default='data/frames')
    ap.add_argument('--masks', default='data/masks')
    ap.add_argument('--out', default='benchmarks/results/train_throughput.json')
    a = ap.parse_args()
    rows = []
    for m in a.models.split(','):
        r = bench(m, a.preset, a.batch, a.steps, a.runs, resolve(a.frames), resolve(a.masks))
        print(f"{m:>14} {r['size']} px, batch {r['batch']}: engine {r['engine_images_per_s']:.2f} img/s, "
              f"bare {r['bare_images_per_s']:.2f} img/s, ratio {r['ratio']:.3f}", flush=True)
        rows.append(r)
    with atomic_write(resolve(a.out)) as f:
        json.dump({'machine': f'{platform.machine()}, {torch.get_num_threads()} torch threads', 'torch': torch.__version__,
                   'device': 'cpu', 'results': rows}, f, indent=1)
