"""GPU check: every registered model's **paper** preset trains for a few dozen steps at its paper input size on one GPU
with bf16 autocast and channels-last (and `torch.compile` with --compile), on synthetic batches of the shapes and
label kinds its recipe reads. For each model it checks the loss is finite and falling (mean of the last quarter of
the steps below the mean of the first quarter) and reports images/s (median over the timed steps, after warm-up) and
the share of the GPU's bf16 peak that the counted FLOPs reach (forward FLOPs from `torch.utils.flop_counter` × 3 for
forward + backward, the usual estimate).

    python benchmarks/gpu_check.py [--models fcn,upernet] [--steps 40] [--batch 16] [--compile] [--peak-tflops 790]
    python benchmarks/gpu_check.py --device cpu --preset cpu --steps 3 --batch 2     # the same code path on a CPU

Synthetic batches, not the sample: the check is of the CUDA path (kernels, autocast, memory format, compile), not of
what a model learns; "falling" only says the optimizer and the loss are wired right on the GPU.
Writes benchmarks/results/gpu.json (or --out).
"""
import argparse
import json
import platform
import statistics
import time

import torch

from costs import count_flops                     # benchmarks/costs.py, beside this script
from forgeloc.core import atomic_write, resolve
from forgeloc.evaluate import bf16_autocast
from forgeloc.models.registry import build_model, call_with, get_recipe, model_names, resolve_config
from forgeloc.train import make_optimizer


def synthetic_batch(recipe, cfg, batch: int, device, gen) -> dict:
    "A batch of the keys the recipe's loss reads: image, label, mask (a random rectangle in each fake) and its label kinds."
    s = int(cfg['size'])
    label = (torch.arange(batch) % 2).float()
    mask = torch.zeros(batch, s, s)
    for i in range(batch):
        if label[i]:
            y, x = torch.randint(0, s // 2, (2,), generator=gen).tolist()
            mask[i, y:y + s // 3, x:x + s // 3] = 1
    b = {'image': torch.randn(batch, 3, s, s, generator=gen), 'label': label.long(), 'mask': mask}
    kinds = recipe.labels_for(cfg)
    if 'fakeness' in kinds:
        b['fakeness'] = mask * torch.rand(batch, s, s, generator=gen)
    if 'noise' in kinds:
        b['noise'] = 0.05 * torch.randn(batch, 3, s, s, generator=gen)    # C×S×S, as the dataset gives it
    return {k: v.to(device) for k, v in b.items()}


def forward_flops(net, x) -> int:
    "Forward FLOPs of one image, counted as benchmarks/costs.py counts them (in eval mode: batch norm cannot train on one image)."
    net.eval()
    flops = count_flops(net, x[:1])
    net.train()
    return flops


def check(model: str, preset: str, steps: int, batch: int, device: str, compile: bool, peak_tflops: float) -> dict:
    cfg = resolve_config(model, preset, {'batch_size': batch})
    recipe = get_recipe(model)
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = build_model(cfg).to(device).to(memory_format=torch.channels_last).train()
    crit = call_with(recipe.loss, cfg, model=net)
    opt = make_optimizer(net.parameters(), cfg)
    batches = [synthetic_batch(recipe, cfg, batch, device, gen) for _ in range(4)]
    flops = forward_flops(net, batches[0]['image'])
    run = torch.compile(net) if compile else net
    amp = device != 'cpu'
    losses, times = [], []
    for step in range(steps):
        b = batches[step % len(batches)]
        if device != 'cpu':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with bf16_autocast(torch.device(device), amp):
            out = run(b['image'].contiguous(memory_format=torch.channels_last))
        out = {k: v.float() for k, v in out.items() if torch.is_tensor(v)}
        loss = crit(out, b)['loss']
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())                      # .item() synchronizes
        times.append(time.perf_counter() - t0)
    q = max(1, steps // 4)
    timed = times[min(3, steps - 1):]                   # after warm-up (and compilation)
    ips = batch / statistics.median(timed)
    achieved = 3 * flops * ips / 1e12
    return {'model': model, 'preset': preset, 'size': int(cfg['size']), 'batch': batch, 'steps': steps, 'compile': compile,
            'finite': all(map(lambda v: v == v and abs(v) != float('inf'), losses)),
            'falling': statistics.mean(losses[-q:]) < statistics.mean(losses[:q]),
            'loss_first': round(losses[0], 4), 'loss_last': round(losses[-1], 4),
            'images_per_s': round(ips, 2), 'gflops_forward_per_image': round(flops / 1e9, 3),
            'tflops_achieved': round(achieved, 2), 'share_of_bf16_peak': round(achieved / peak_tflops, 4),
            'max_memory_gib': round(torch.cuda.max_memory_allocated() / 2**30, 2) if device != 'cpu' else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--models', default=','.join(model_names()))
    ap.add_argument('--preset', default='paper')
    ap.add_argument('--steps', type=int, default=40)
    ap.add_argument('--batch', type=int, default=16)
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--compile', action='store_true')
    ap.add_argument('--peak-tflops', type=float, default=790.0, help="the GPU's dense bf16 peak (H200: about 790 measured)")
    ap.add_argument('--out', default='benchmarks/results/gpu.json')
    a = ap.parse_args()
    if a.device.startswith('cuda') and not torch.cuda.is_available():
        raise SystemExit('no CUDA device: run this on a machine with a GPU (or pass --device cpu for the code path)')
    rows, failures = [], []
    for m in a.models.split(','):
        try:
            r = check(m, a.preset, a.steps, a.batch, a.device, a.compile, a.peak_tflops)
        except Exception as e:                                        # noqa: BLE001 — reported, the others go on
            r = {'model': m, 'preset': a.preset, 'error': f'{type(e).__name__}: {e}'}
        rows.append(r)
        ok = 'error' not in r and r['finite'] and r['falling']
        failures += [] if ok else [m]
        print(json.dumps(r), flush=True)
    out = resolve(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as f:
        json.dump({'machine': platform.node(), 'device': torch.cuda.get_device_name() if a.device != 'cpu' else 'cpu',
                   'torch': torch.__version__, 'results': rows}, f, indent=1)
    print(f'wrote {out}; ' + (f'FAILED: {", ".join(failures)}' if failures else 'every model: finite and falling'))
    raise SystemExit(1 if failures else 0)


if __name__ == '__main__':
    main()
