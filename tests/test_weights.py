"Importing the authors' checkpoints (issue 18): full-size files synthesized from each format's key list import strictly and run; file-level errors name the file and the key; the imported checkpoint round-trips, carries its provenance, gets its own input in evaluation and in the `forgeloc` command, and runs through the evaluate notebook and DVC's weights stages."
import hashlib
import re

import pytest
import torch

from forgeloc.core import ForgelocError
from forgeloc.models.registry import build_model
from forgeloc.models.weights import (FORMATS, authors_layout, format_config, import_weights, input_normalization,
                                     random_authors_state, to_authors, to_forgeloc)
from forgeloc.checkpoints import load_checkpoint, read_checkpoint


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_full_size_random_file_imports_and_runs(fmt):
    "Random values in the authors' key list at the papers' size fill the forgeloc network strictly, and it runs on a small input."
    torch.manual_seed(0)
    state = random_authors_state(fmt, seed=1)
    net = build_model(format_config(fmt)).eval()
    sd, rep = to_forgeloc(state, fmt, net.state_dict())
    assert rep['used'] + sum(rep['dropped'].values()) == len(state) == len(authors_layout(fmt))
    net.load_state_dict(sd, strict=True)
    back = to_authors(net.state_dict(), fmt)         # the way back gives the file's tensors, except what the rules drop
    kept = {k for k in state if not any(re.search(p, k.removeprefix('module.')) for p, _ in FORMATS[fmt].drops)}
    assert set(back) == kept
    assert all(torch.equal(back[k].float(), state[k].float()) for k in kept)
    size = 299 if fmt == 'kong' else 64            # Kong's classifier (no padding) needs about 230 px or more
    with torch.no_grad():                            # (a forward pass re-projects the BayarConv weights, as the authors')
        out = net(torch.rand(1, 3, size, size))
    assert all(torch.isfinite(v).all() for v in out.values())


def test_official_mvss_file_end_to_end(tmp_path):
    "An official MVSS-Net file (its keys cannot tell: the format is given) becomes a checkpoint that records BGR + ImageNet statistics and builds input_order='bgr'."
    src = tmp_path / 'mvssnet_casia.pt'
    torch.save(random_authors_state('mvss_official', seed=2), src)
    with pytest.raises(ForgelocError, match="give the format: 'mvss_official'"):
        import_weights(src, out_dir=tmp_path / 'x')
    path = import_weights(src, 'mvss_official', out_dir=tmp_path / 'mvss_casia')
    ck = read_checkpoint(path)
    imp, cfg = ck['imported'], ck['cfg']
    assert (imp['source_file'], imp['format'], imp['sha256']) == ('mvssnet_casia.pt', 'mvss_official', hashlib.sha256(src.read_bytes()).hexdigest())
    assert imp['authors_input']['channel_order'] == 'BGR' and imp['authors_input']['mean'] == (0.485, 0.456, 0.406)
    assert imp['input']['network_reverses_channels'] and cfg['input_order'] == 'bgr'
    assert input_normalization(cfg) == ((0.406, 0.456, 0.485), (0.225, 0.224, 0.229))
    net, _ = load_checkpoint(path)
    assert net.input_order == 'bgr'


@pytest.fixture(scope='module')
def kong_file(tmp_path_factory):
    d = tmp_path_factory.mktemp('kong')
    state = random_authors_state('kong', seed=4)
    torch.save(state, d / 'best.pth')
    return d, state


@pytest.mark.parametrize('how', ['renamed', 'removed', 'misshaped'])
def test_broken_file_names_file_and_key(kong_file, how):
    d, state = kong_file
    key = 'module.block7.rep.4.pointwise.weight'
    s = dict(state)
    if how == 'renamed':
        s['module.block7.rep.4.pointwise.weights'] = s.pop(key)
    elif how == 'removed':
        del s[key]
    else:
        s[key] = torch.zeros(729, 728, 1, 1)
    torch.save(s, d / f'{how}.pth')
    with pytest.raises(ForgelocError) as e:
        import_weights(d / f'{how}.pth', out_dir=d / 'out')
    msg = str(e.value)
    assert f'{how}.pth' in msg and 'block7.rep.4.pointwise.weight' in msg
    assert {'renamed': '1 missing, 1 unexpected', 'removed': '1 missing, 0 unexpected', 'misshaped': '1 mis-shaped'}[how] in msg
    assert not (d / 'out' / 'best.pt').exists()


def test_kong_file_detected_and_equal_to_direct_conversion(kong_file):
    d, state = kong_file
    net, ck = load_checkpoint(import_weights(d / 'best.pth', out_dir=d / 'kong'))
    assert ck['imported']['format'] == 'kong' and ck['cfg']['attention'] == 'logit'
    direct = build_model(format_config('kong')).eval()
    direct.load_state_dict(to_forgeloc(state, 'kong', direct.state_dict())[0])
    x = torch.rand(1, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        a, b = net(x), direct(x)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- the imported checkpoint in use: round trip, provenance, the command, the input the network sees, the pipeline ----

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import yaml

from forgeloc.checkpoints import save_checkpoint
from forgeloc.cli import _imported_of, main
from forgeloc.evaluate import predict, recipe_datasets
from forgeloc.models.registry import get_recipe
from forgeloc.models.weights import mark_absent

OFFICIAL_BGR = (torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225]))   # dong03/MVSS-Net, on B, G, R


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    "A full-size file in the official MVSS-Net layout (random values), the state it holds, and its import."
    d = tmp_path_factory.mktemp('official')
    state = random_authors_state('mvss_official', seed=7)
    torch.save(state, d / 'mvssnet_casia.pt')
    return d, state, import_weights(d / 'mvssnet_casia.pt', 'mvss_official', out_dir=d / 'models' / 'mvss_casia')


def test_round_trip_gives_the_in_memory_conversion_and_its_provenance(official):
    "authors' file → best.pt → read back: the outputs of converting the file in memory, and every provenance field."
    d, state, path = official
    net, ck = load_checkpoint(path)
    direct = build_model(format_config('mvss_official')).eval()
    direct.load_state_dict(to_forgeloc(state, 'mvss_official', direct.state_dict())[0])
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = net(x), direct(x)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    imp = ck['imported']
    src = d / 'mvssnet_casia.pt'
    assert (imp['source_file'], imp['source_bytes'], imp['sha256']) == (src.name, src.stat().st_size, hashlib.sha256(src.read_bytes()).hexdigest())
    assert imp['format'] == 'mvss_official' and 'dong03/MVSS-Net' in imp['format_source']
    a_in = imp['authors_input']
    assert (a_in['channel_order'], a_in['scale'], a_in['mean'], a_in['std'], a_in['size']) == \
        ('BGR', 1 / 255, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 512)
    assert imp['input']['mean'] == (0.406, 0.456, 0.485) and imp['input']['network_reverses_channels']
    assert imp['conversion']['used'] + sum(imp['conversion']['dropped'].values()) == 800
    assert _imported_of(path) == imp                                   # what the command reads, memory-mapped


def _one_pixel_data(d: Path, rgb=(255, 0, 51)) -> Path:
    "frames/ and masks/ of one 1×1 test image (R, G, B = `rgb`) with an empty mask, as the data stages lay them out."
    (d / 'frames').mkdir(parents=True); (d / 'masks').mkdir()
    cv2.imwrite(str(d / 'frames' / 'a.png'), np.array([[rgb[::-1]]], np.uint8))
    cv2.imwrite(str(d / 'masks' / 'a.png'), np.zeros((1, 1), np.uint8))
    pd.DataFrame([{'item': 'a', 'split': 'test', 'label': 0, 'mask': 'masks/a.png', 'dataset': 'casia2'}]).to_csv(d / 'manifest.csv', index=False)
    return d


def test_evaluation_feeds_the_official_file_bgr_with_imagenet_statistics(official, tmp_path):
    "The evaluation's dataset, built from the imported checkpoint's cfg, through predict: MVSS-Net's RGB stream receives what dong03/MVSS-Net's does."
    _, _, path = official
    net, ck = load_checkpoint(path)
    data = _one_pixel_data(tmp_path)
    ds = recipe_datasets({**ck['cfg'], 'size': 32}, data, data, splits=('test',))['test']
    seen = []
    hook = net.rgb_encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0][0, :, 0, 0].clone()))
    predict(net, ds, get_recipe('mvss'))
    hook.remove()
    bgr = torch.tensor([0.2, 0.0, 1.0])                                  # the pixel as cv2.imread gives it, /255
    torch.testing.assert_close(seen[0], (bgr - OFFICIAL_BGR[0]) / OFFICIAL_BGR[1], atol=1e-5, rtol=0)
    zhang = recipe_datasets({**format_config('mvss_zhang'), 'size': 32}, data, data, splits=('test',))['test'][0]['image'][:, 0, 0]
    torch.testing.assert_close(zhang, torch.tensor([1.0, 0.0, 0.2]))     # Zhang et al.'s retrained MVSS-Net: RGB/255


def _small_imported(official, out: Path, fmt='mvss_official') -> Path:
    "A checkpoint laid out as import_weights writes it (the official import's provenance), of a small network of the format's model."
    cfg = {**format_config(fmt), 'backbone': 'resnet10', 'width': 0.25, 'size': 64}
    torch.manual_seed(0)
    return save_checkpoint({'state_dict': build_model(cfg).state_dict(), 'cfg': cfg, 'epoch': None, 'val': None, 'run_info': {},
                            'imported': _imported_of(official[2])}, out / 'best.pt')


def test_the_forgeloc_command_feeds_an_imported_checkpoint_its_own_input(official, tmp_path, monkeypatch):
    "`forgeloc -c` on an imported checkpoint: its normalization reaches MVSS-Net's RGB stream (B, G, R, ImageNet) at its own input side."
    import forgeloc.cli as cli
    ck = _small_imported(official, tmp_path / 'mvss_casia')
    seen, real = [], cli.load_model
    def load_and_watch(spec, device='cpu'):
        net, recipe, cfg, path = real(spec, device)
        net.rgb_encoder.register_forward_pre_hook(lambda m, args: seen.append(args[0][0, :, 0, 0].clone()))
        return net, recipe, cfg, path
    monkeypatch.setattr(cli, 'load_model', load_and_watch)
    cv2.imwrite(str(tmp_path / 'red.png'), np.full((40, 30, 3), (51, 0, 255), np.uint8))
    assert main(['-c', str(ck), str(tmp_path / 'red.png'), '-o', str(tmp_path / 'out'), '--quiet']) == 0
    s = json.loads((tmp_path / 'out' / 'scores.json').read_text())
    assert (s['imported']['format'], s['imported']['source_file'], s['stage_size'], s['size']) == ('mvss_official', 'mvssnet_casia.pt', 64, 64)
    assert s['normalization'] == {'mean': [0.406, 0.456, 0.485], 'std': [0.225, 0.224, 0.229]}
    torch.testing.assert_close(seen[0], (torch.tensor([0.2, 0.0, 1.0]) - OFFICIAL_BGR[0]) / OFFICIAL_BGR[1], atol=1e-5, rtol=0)


def run_import(capsys, *argv):
    code = main(['import-weights', *map(str, argv)])
    return code, capsys.readouterr().err.strip()


def test_cli_import_weights(official, kong_file, tmp_path, capsys):
    "forgeloc import-weights: writes best.pt (its outputs those of the library's import); a format mismatch names the keys; --missing-ok."
    d, _, path = official
    code, msg = run_import(capsys, d / 'mvssnet_casia.pt', '--format', 'mvss_official', '-o', tmp_path / 'mvss_casia')
    assert code == 0 and '(mvss_official, sha256' in msg and 'input BGR' in msg, msg
    a, b = load_checkpoint(tmp_path / 'mvss_casia' / 'best.pt')[0], load_checkpoint(path)[0]
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    code, msg = run_import(capsys, d / 'mvssnet_casia.pt', '-o', tmp_path / 'auto')
    assert code == 2 and "give the format: 'mvss_official'" in msg
    kd, _ = kong_file
    code, msg = run_import(capsys, kd / 'best.pth', '--format', 'mvss_official', '-o', tmp_path / 'wrong')
    assert code == 2 and "does not fit format 'mvss_official'" in msg and 'model.conv1.weight' in msg   # missing, named
    assert 'unexpected: no rule uses or drops them (334): conv1.weight, bn1.weight' in msg                        # the file's keys, named
    assert "look like format 'kong'" in msg and not (tmp_path / 'wrong' / 'best.pt').exists()
    code, msg = run_import(capsys, tmp_path / 'none.pt', '--format', 'mvss_zhang', '-o', tmp_path / 'absent', '--missing-ok')
    assert code == 0 and msg.count('\n') == 0 and 'not found: skipped' in msg
    assert json.loads((tmp_path / 'absent' / 'absent.json').read_text())['format'] == 'mvss_zhang'


@pytest.fixture(scope='module')
def tiny_data(tiny_raw, tmp_path_factory):
    "Frames and masks of the tiny sample, through the two data stages."
    from forgeloc.pipeline import run_stage
    d = tmp_path_factory.mktemp('weights_data')
    run_stage('extract_frames', d / 'e.ipynb', raw_dir=str(tiny_raw), out_dir=str(d / 'frames'), frames_per_real=2, frames_per_fake=1)
    run_stage('build_masks', d / 'b.ipynb', frames_dir=str(d / 'frames'), raw_dir=str(tiny_raw), out_dir=str(d / 'masks'))
    return d


def test_the_evaluate_notebook_on_an_imported_checkpoint_and_an_absent_one(official, tiny_data, tmp_path):
    "evaluate_weights@<name>: the recipe from the checkpoint, `model` the entry's name, provenance recorded, one run; an absent file: every output 'not run'."
    from forgeloc.compare import comparison
    from forgeloc.pipeline import run_stage
    ck = _small_imported(official, tmp_path / 'models' / 'mvss_casia')
    mark_absent('weights/9.pth', 'zhang_upernet_bayar', tmp_path / 'models' / 'zhang_9')
    out = lambda name: dict(metrics_path=str(tmp_path / 'ev' / f'{name}.json'), groups_path=str(tmp_path / f'{name}.csv'),
                            run_path=str(tmp_path / f'{name}.run.json'), roc_path=str(tmp_path / f'{name}.roc.csv'),
                            pr_path=str(tmp_path / f'{name}.pr.csv'), figure_path=str(tmp_path / f'{name}.png'))
    for name in ('mvss_casia', 'zhang_9'):
        run_stage('evaluate', tmp_path / f'{name}.ipynb', key='mvss', model=name, checkpoint=str(tmp_path / 'models' / name / 'best.pt'),
                  frames_dir=str(tiny_data / 'frames'), masks_dir=str(tiny_data / 'masks'), n_examples=2, **out(name))
    m = json.loads((tmp_path / 'ev' / 'mvss_casia.json').read_text())
    assert (m['model'], m['recipe'], m['train_set'], m['epochs']) == ('mvss_casia', 'mvss', 'authors', None)
    assert m['imported']['format'] == 'mvss_official' and m['imported']['source_file'] == 'mvssnet_casia.pt'
    assert list(m['seeds']) == ['2026'] and 0 <= m['image_auc'] <= 1          # one run: no extra seeds for an imported file
    a = json.loads((tmp_path / 'ev' / 'zhang_9.json').read_text())
    assert (a['status'], a['imported']) == ('not run', {'source_file': '9.pth', 'format': 'zhang_upernet_bayar'})
    assert list(pd.read_csv(tmp_path / 'zhang_9.roc.csv').columns) == ['fpr', 'tpr', 'threshold'] and (tmp_path / 'zhang_9.png').exists()
    assert [r['model'] for r in comparison(tmp_path / 'ev')] == ['mvss_casia']     # the comparison leaves the not-run entry out


def _dvc(repo, env, *args):
    return subprocess.run(['dvc', *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)


def test_dvc_weights_stages(tmp_path):
    """Through DVC: `weights: {}` adds no stage (the default pipeline's stage list is unchanged); two entries add an
    import_weights@ and an evaluate_weights@ each; with its file absent, import_weights@ passes, says so in one line after
    the params check's one warning line, and records absent.json."""
    from test_params import _dvc_copy
    repo = tmp_path / 'repo'
    env = _dvc_copy(repo)
    r = _dvc(repo, env, 'stage', 'list')
    assert r.returncode == 0 and 'weights' not in r.stdout, r.stdout + r.stderr
    default = [l.split()[0] for l in r.stdout.splitlines() if l.strip()]
    params = yaml.safe_load((repo / 'params.yaml').read_text())
    (repo / 'data/raw/FaceForensics++').mkdir(parents=True)
    params['base']['raw_dir'] = 'data/raw'
    params['weights'] = {'mvss_casia': {'file': 'weights/mvssnet_casia.pt', 'format': 'mvss_official'},
                         'zhang_9': {'file': 'weights/9.pth', 'format': 'zhang_upernet_bayar'}}
    (repo / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / 'weights').mkdir()
    r = _dvc(repo, env, 'stage', 'list')
    stages = [l.split()[0] for l in r.stdout.splitlines() if l.strip()]
    assert [s for s in stages if 'weights' not in s] == default
    assert {s for s in stages if 'weights' in s} == {f'{k}_weights@{n}' for k in ('import', 'evaluate') for n in ('mvss_casia', 'zhang_9')}
    r = _dvc(repo, env, 'repro', 'import_weights@zhang_9')
    said = r.stdout + r.stderr
    assert r.returncode == 0, said[-3000:]
    assert said.count('weights/9.pth not found') == 2 and 'check_params: warning: `weights.zhang_9.file`' in said, said[-3000:]
    assert json.loads((repo / 'models/zhang_9/absent.json').read_text())['status'] == 'not run'
