"""Does an imported network compute what the authors' network computes?

Builds each authors' network from a local checkout of their repository (nothing is downloaded: their ImageNet loaders are
stubbed out), gives every parameter and BatchNorm statistic random values, saves its state dict as the authors' training
scripts do, imports that file with `forgeloc import-weights`' converter, and feeds both networks the same image, each in
its own input convention (dong03/MVSS-Net: BGR with ImageNet mean/std; Zhang et al.: RGB/255; Kong et al.: the model's
normalization). Prints and writes the largest output difference per format.

    python tools/authors_equivalence.py --mvss ../MVSS-Net --zhang ../ShallowDeepFakesLocalization --kong ../Detect_and_Locate

Any of the three may be left out. Zhang et al.'s PrRoIPool is a CUDA extension: it is replaced by forgeloc's
`prroi_pool` (tested on its own against the exact integral in nbs/22_models.layers.ipynb), and their
SynchronizedBatchNorm2d by nn.BatchNorm2d (the same in eval mode on one device).
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import tempfile
import types
from pathlib import Path

import torch
import torch.nn as nn

from forgeloc.checkpoints import load_checkpoint
from forgeloc.models.layers import prroi_pool
from forgeloc.models.weights import import_weights, input_normalization

OUT = Path(__file__).resolve().parents[1] / 'benchmarks' / 'results' / 'authors_equivalence.json'


def randomize(net: nn.Module, seed: int = 0) -> nn.Module:
    "Random BatchNorm affine parameters and running statistics (the rest keeps its seeded default initialisation)."
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.weight.data = 0.5 + torch.rand(m.weight.shape, generator=g)
            m.bias.data = 0.2 * torch.randn(m.bias.shape, generator=g)
            m.running_mean = 0.1 * torch.randn(m.running_mean.shape, generator=g)
            m.running_var = 0.5 + torch.rand(m.running_var.shape, generator=g)
    return net.eval()


@contextlib.contextmanager
def authors_repo(path: Path, stubs: dict | None = None):
    "`path` first on sys.path (its `models`, `arch`, `utils` packages importable), `stubs` as modules; restored afterwards."
    saved_path, saved_mods = list(sys.path), dict(sys.modules)
    for name in [n for n in sys.modules if n.split('.')[0] in ('models', 'arch', 'utils', 'common')]:
        del sys.modules[name]
    sys.path.insert(0, str(path))
    sys.modules.update(stubs or {})
    try:
        yield
    finally:
        sys.path[:] = saved_path
        sys.modules.clear(); sys.modules.update(saved_mods)


def compare(tag: str, authors_out: dict, ours_out: dict) -> dict:
    rows = {}
    for k, a in authors_out.items():
        b = ours_out[k].reshape(a.shape)
        rows[k] = {'shape': list(a.shape), 'max_abs_diff': float((a - b).abs().max()),
                   'scale': float(a.abs().max())}
    print(f'{tag}: ' + '; '.join(f"{k} {tuple(r['shape'])} max |diff| {r['max_abs_diff']:.2e} (max |value| {r['scale']:.2e})"
                                 for k, r in rows.items()))
    return rows


def ours_for(state: dict, fmt: str, tmp: Path):
    p = tmp / f'{fmt}.pth'
    torch.save(state, p)
    best = import_weights(p, fmt, tmp / fmt)
    net, ck = load_checkpoint(best)
    return net.eval(), ck


def check_mvss(repo: Path, tmp: Path, size: int, rgb: torch.Tensor, fmt: str = 'mvss_official') -> dict:
    "dong03/MVSS-Net's network (`mvss_official`: BGR, ImageNet mean/std on B, G, R) or Zhang et al.'s copy of it (`mvss_zhang`: RGB/255, their rgb2gray reads R, G, B)."
    import torch.utils.model_zoo as mz
    load_url = mz.load_url
    mz.load_url = lambda *a, **k: {}                                   # their ResNet50 asks for ImageNet weights
    try:
        with authors_repo(repo, _zhang_stubs() if fmt == 'mvss_zhang' else None):
            torch.manual_seed(0)
            net = randomize(importlib.import_module('models.mvssnet').get_mvss(sobel=True, n_input=3, constrain=True))
    finally:
        mz.load_url = load_url
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x_a = (rgb[:, [2, 1, 0]] - mean) / std if fmt == 'mvss_official' else rgb
    ours, ck = ours_for(net.state_dict(), fmt, tmp)
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(ck['cfg']))
    with torch.no_grad():
        edge, seg = net(x_a)
        o = ours((rgb - m) / s)
    return {fmt: compare(fmt, {'seg': seg, 'edge': edge}, o)}


class _WholeMapPrRoIPool(nn.Module):
    "Stand-in for Zhang et al.'s PrRoIPool2D(s, s, 1.) called with whole-map rois (the only way their UPerNet calls it)."
    def __init__(self, h, w, scale):
        super().__init__(); self.bins = int(h)
    def forward(self, x, rois):
        H, W = x.shape[-2:]
        assert torch.equal(rois[:, 1:].cpu(), torch.tensor([[0., 0., W, H]] * len(rois))), rois
        return prroi_pool(x, self.bins)


def _zhang_stubs() -> dict:
    nn_mod = types.ModuleType('utils.lib.nn')
    nn_mod.SynchronizedBatchNorm2d, nn_mod.PrRoIPool2D = nn.BatchNorm2d, _WholeMapPrRoIPool
    pkgs = {n: types.ModuleType(n) for n in ('utils', 'utils.lib')}
    pkgs['utils'].__path__, pkgs['utils.lib'].__path__ = [], []
    return {**pkgs, 'utils.lib.nn': nn_mod}


def check_zhang(repo: Path, tmp: Path, size: int, rgb: torch.Tensor) -> dict:
    out = check_mvss(repo, tmp, size, rgb, 'mvss_zhang')
    with authors_repo(repo, _zhang_stubs()):
        res = importlib.import_module('models.resnet')
        res.load_url = lambda *a, **k: {}                                # CSAIL's ImageNet file: not downloaded
        up = importlib.import_module('models.upernet')
        for fmt, bayar in (('zhang_upernet', False), ('zhang_upernet_bayar', True)):
            torch.manual_seed(0)
            net = randomize(up.EncoderDecoder(n_classes=1, img_size=size, bayar=bayar))
            ours, ck = ours_for(net.state_dict(), fmt, tmp)
            m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(ck['cfg']))
            with torch.no_grad():
                cls, seg = net(rgb)
                o = ours((rgb - m) / s)
            out[fmt] = compare(fmt, {'cls': cls, 'seg': seg}, o)
    return out


def check_kong(repo: Path, tmp: Path, size: int, rgb: torch.Tensor) -> dict:
    with authors_repo(repo):
        mod = importlib.import_module('arch.xcep_fusion')
        torch.manual_seed(0)
        net = randomize(mod.xception(pretrained=False))
    ours, ck = ours_for(net.state_dict(), 'kong', tmp)
    m, s = (torch.tensor(v).view(1, 3, 1, 1) for v in input_normalization(ck['cfg']))
    x = (rgb - m) / s
    with torch.no_grad():
        a = net(x)
        o = ours(x)
    names = ['cls', 'seg1', 'seg2', 'seg3', 'noise1', 'noise2', 'noise3']
    return {'kong': compare('kong', dict(zip(names, a)), {**{'cls': o['cls']}, **_kong_maps(o)})}


def _kong_maps(o: dict) -> dict:
    "forgeloc's Detect-and-Locate outputs under the authors' names (seg1..3: the semantic maps sem1..3, noise1..3: the noise maps)."
    return {**{f'seg{i}': o[f'sem{i}'] for i in (1, 2, 3)}, **{f'noise{i}': o[f'noise{i}'] for i in (1, 2, 3)}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--mvss', type=Path, help='a checkout of dong03/MVSS-Net')
    ap.add_argument('--zhang', type=Path, help='a checkout of zjbthomas/ShallowDeepFakesLocalization')
    ap.add_argument('--kong', type=Path, help='a checkout of ChenqiKONG/Detect_and_Locate')
    ap.add_argument('--size', type=int, default=128, help='input side (the networks are fully convolutional)')
    ap.add_argument('--out', type=Path, default=OUT)
    a = ap.parse_args(argv)
    torch.manual_seed(1)
    results, tmp = {}, Path(tempfile.mkdtemp())
    for flag, fn, size in (('mvss', check_mvss, a.size), ('zhang', check_zhang, a.size), ('kong', check_kong, 299)):
        repo = getattr(a, flag)
        if repo is not None:
            rgb = torch.rand(1, 3, size, size)
            results.update(fn(repo.resolve(), tmp, size, rgb))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({'size': a.size, 'results': results}, indent=1))
    print(f'written {a.out}')


if __name__ == '__main__':
    main()
