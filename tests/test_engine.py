"The training engine on real pipeline data: every model, determinism, resume after a kill, 2-process DDP (gloo), bad input."
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from forgeloc.core import ForgelocError
from forgeloc.models.registry import RECIPES, Recipe, get_recipe, model_names, register, resolve_config
from forgeloc.pipeline import run_stage
from forgeloc.checkpoints import load_checkpoint
from forgeloc.evaluate import predict, recipe_datasets
from forgeloc.launch import launch_training, run_training

ROOT = Path(__file__).resolve().parents[1]
sha1 = lambda p: hashlib.sha1(Path(p).read_bytes()).hexdigest()


@pytest.fixture(scope='module')
def data(tiny_raw, tmp_path_factory):
    "Frames and masks of the tiny sample, through the two data stages."
    d = tmp_path_factory.mktemp('engine')
    run_stage('extract_frames', d / 'e.ipynb', raw_dir=str(tiny_raw), out_dir=str(d / 'frames'), frames_per_real=3, frames_per_fake=2)
    run_stage('build_masks', d / 'b.ipynb', frames_dir=str(d / 'frames'), raw_dir=str(tiny_raw), out_dir=str(d / 'masks'))
    return d


def spec_for(data, out, model='fcn', **over):
    over = {'epochs': 1, 'batch_size': 8, 'size': 64, **over}
    return dict(cfg=resolve_config(model, 'cpu', over), frames_dir=str(data / 'frames'), masks_dir=str(data / 'masks'),
                out_dir=str(out), live_dir='', seed=5, device='cpu', progress=False)


def test_the_pipeline_trains_the_paper_models():
    "The default pipeline trains every registered paper model (and the registry knows them all)."
    import yaml
    listed = set(yaml.safe_load((ROOT / 'params.yaml').read_text())['train']['models'])
    assert {'fcn', 'upernet', 'upernet_bayar', 'mvss'} <= listed <= set(model_names())


@pytest.mark.parametrize('model', model_names())
def test_every_model_trains_one_epoch_and_predicts_full_resolution_maps(data, tmp_path, model):
    hist = run_training(spec_for(data, tmp_path / model, model))
    assert len(hist) == 1 and torch.isfinite(torch.tensor(hist[0]['train_loss']))
    net, ckpt = load_checkpoint(tmp_path / model / 'best.pt')
    assert ckpt['cfg']['model'] == model and ckpt['epoch'] == 1
    test = recipe_datasets(ckpt['cfg'], data / 'frames', data / 'masks', splits=('test',))['test']
    p = predict(net, test, get_recipe(model))
    assert p['maps'].shape == (len(test), 64, 64) and p['scores'].shape == (len(test),)
    assert 0 <= p['maps'].min() and p['maps'].max() <= 1 and 0 <= p['scores'].min() and p['scores'].max() <= 1
    assert json.loads((tmp_path / model / 'history.json').read_text())['history'][0]['seconds'] > 0


def test_same_seed_same_machine_gives_byte_identical_checkpoints(data, tmp_path):
    for run in ('a', 'b'):
        run_training(spec_for(data, tmp_path / run, epochs=2))
    for f in ('best.pt', 'last.pt'):
        assert sha1(tmp_path / 'a' / f) == sha1(tmp_path / 'b' / f), f
    run_training({**spec_for(data, tmp_path / 'c', epochs=2), 'seed': 6})
    assert sha1(tmp_path / 'a' / 'last.pt') != sha1(tmp_path / 'c' / 'last.pt')      # the seed matters


def test_a_killed_run_resumes_where_it_stopped(data, tmp_path):
    "SIGKILL a training process after its first epoch; the next run continues from last.pt and ends where an uninterrupted run ends."
    spec = {**spec_for(data, tmp_path / 'killed', epochs=3, lr=2e-3), 'live_dir': str(tmp_path / 'live_killed')}
    (tmp_path / 'spec.json').write_text(json.dumps(spec, default=list))
    code = 'import json, sys; from forgeloc.launch import run_training; run_training(json.load(open(sys.argv[1])))'
    proc = subprocess.Popen([sys.executable, '-c', code, str(tmp_path / 'spec.json')], env={**os.environ, 'FORGELOC_ROOT': str(ROOT)})
    last = tmp_path / 'killed' / 'last.pt'
    t0 = time.time()
    while not last.exists() and proc.poll() is None and time.time() - t0 < 300:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL); proc.wait()
    done = torch.load(last, weights_only=False)['epoch']
    assert 1 <= done < 3, f'the process was not killed mid-run (epoch {done})'
    for f in (tmp_path / 'live_killed' / 'plots' / 'metrics').glob('*.tsv'):
        f.write_text(f.read_text().splitlines()[0] + '\n')   # the worst moment: killed after the checkpoint, before any log
    hist = run_training(spec)
    assert [h['epoch'] for h in hist] == [1, 2, 3]
    run_training({**spec_for(data, tmp_path / 'whole', epochs=3, lr=2e-3), 'live_dir': str(tmp_path / 'live_whole')})
    a, b = (torch.load(tmp_path / d / 'last.pt', weights_only=False) for d in ('killed', 'whole'))
    assert all(torch.equal(v, b['state_dict'][k]) for k, v in a['state_dict'].items())
    assert sha1(tmp_path / 'killed' / 'last.pt') == sha1(tmp_path / 'whole' / 'last.pt')      # the very same bytes
    curve = lambda d: pd.read_csv(tmp_path / d / 'plots' / 'metrics' / 'train_loss.tsv', sep='\t')
    assert curve('live_killed').step.tolist() == curve('live_whole').step.tolist() == [0, 1, 2]   # the curve kept its first epochs
    assert np.allclose(curve('live_killed').train_loss, curve('live_whole').train_loss)
    assert all(r['seconds'] is not None for r in json.loads((tmp_path / 'killed' / 'history.json').read_text())['history'])
    with pytest.raises(ForgelocError, match='lr differ'):                          # an unfinished run, another config
        c = torch.load(last, weights_only=False); c['epoch'] = 1; torch.save(c, last)
        run_training(spec_for(data, tmp_path / 'killed', epochs=3, lr=1e-3))


def test_two_process_ddp_with_gloo(data, tmp_path):
    hist = launch_training(spec_for(data, tmp_path / 'ddp', epochs=1), nproc=2)
    assert len(hist) == 1
    assert json.loads((tmp_path / 'ddp' / 'history.json').read_text())['world_size'] == 2
    net, ckpt = load_checkpoint(tmp_path / 'ddp' / 'best.pt')
    assert ckpt['epoch'] == 1


def test_missing_label_kind_names_build_masks_labels(data, tmp_path):
    r = get_recipe('fcn')      # hull: a kind the fixture never builds (it needs landmarks); noise is built by default now
    register(Recipe('needs_hull', r.build, r.loss, r.score_and_map, labels=('binary', 'hull'), presets=r.presets))
    try:
        with pytest.raises(ForgelocError, match="build_masks.labels"):
            run_training(spec_for(data, tmp_path / 'n', 'needs_hull'))
    finally:
        del RECIPES['needs_hull']


def test_step_two_starts_from_step_one(data, tmp_path):
    "detect_locate's step 2 (init_from) starts from xception_seg's backbone and semantic module (Kong et al. Sec. III-D)."
    run_training(spec_for(data, tmp_path / 'seg', 'xception_seg'))
    step1 = torch.load(tmp_path / 'seg' / 'best.pt', weights_only=False)['state_dict']
    # lr 1e-9: one epoch of Adam moves a weight by about lr per step, so step 2 ends where it started
    run_training(spec_for(data, tmp_path / 'detect_locate', 'detect_locate', init_from=str(tmp_path / 'seg' / 'best.pt'), lr=1e-9))
    ck = torch.load(tmp_path / 'detect_locate' / 'best.pt', weights_only=False)
    shared = [k for k in step1 if k.startswith(('backbone.', 'semantic.')) and 'running_' not in k and 'num_batches' not in k]
    assert len(shared) > 50 and all(k in ck['state_dict'] for k in shared)
    assert all(torch.allclose(ck['state_dict'][k], step1[k], atol=1e-6) for k in shared)
    assert ck['init_from']['loaded'] == {'backbone': sum(k.startswith('backbone.') for k in step1),
                                         'semantic': sum(k.startswith('semantic.') for k in step1)}
    assert set(ck['init_from']['not_initialised']) == {'noise', 'fusion', 'classifier', 'fc'}
    run_training(spec_for(data, tmp_path / 'scratch', 'detect_locate', lr=1e-9))       # the same run without init_from: other weights
    scratch = torch.load(tmp_path / 'scratch' / 'best.pt', weights_only=False)['state_dict']
    assert not any(torch.allclose(scratch[k], step1[k], atol=1e-6) for k in shared if k.endswith('conv1.weight'))
    with pytest.raises(ForgelocError, match=r'`init_from` checkpoint .*absent/best.pt not found'):
        run_training(spec_for(data, tmp_path / 'k2', 'detect_locate', init_from=str(tmp_path / 'absent' / 'best.pt')))


def test_detect_locate_without_noise_labels_names_build_masks_labels_and_noise(data, tmp_path):
    "A masks folder built without `noise` in build_masks.labels: detect_locate stops with a message naming both."
    import pandas as pd
    masks = tmp_path / 'masks'
    masks.mkdir()
    for sub in ('masks', 'labels'):
        (masks / sub).symlink_to(data / 'masks' / sub)
    pd.read_csv(data / 'masks' / 'manifest.csv', keep_default_na=False).drop(columns=['noise']).to_csv(masks / 'manifest.csv', index=False)
    with pytest.raises(ForgelocError, match=r"'noise' label.*add noise to `build_masks.labels`"):
        run_training({**spec_for(data, tmp_path / 'k', 'detect_locate'), 'masks_dir': str(masks)})
    run_training({**spec_for(data, tmp_path / 's', 'xception_seg'), 'masks_dir': str(masks)})   # step 1 needs no noise label


def test_detect_locate_trains_on_the_authors_8bit_noise_label(data, tmp_path):
    "noise_label png (the paper preset's): the dataset makes noise_png from the stored noise residual; the run trains on it."
    from forgeloc.data.labels import noise_png_label, read_label
    spec = spec_for(data, tmp_path / 'png', 'detect_locate', noise_label='png')
    ds = recipe_datasets(spec['cfg'], data / 'frames', data / 'masks', splits=('train',))['train']
    assert ds.kinds == ['noise_png'] and ds[0]['noise_png'].shape == (1, 64, 64)
    man = ds.rows
    raw = read_label(data / 'masks' / man.noise.iloc[0], 'noise')
    full = recipe_datasets({**spec['cfg'], 'size': raw.shape[0]}, data / 'frames', data / 'masks', splits=('train',))['train']
    assert np.array_equal(full.extra['noise_png'][0][0], noise_png_label(raw))          # at the stored size: exactly the 8-bit form
    hist = run_training(spec)
    assert len(hist) == 1 and np.isfinite(hist[0]['train_loss'])


def test_corrupt_checkpoint_and_bad_init_file(data, tmp_path):
    bad = tmp_path / 'best.pt'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(ForgelocError, match='corrupt'):
        load_checkpoint(bad)
    with pytest.raises(ForgelocError, match='`init` file .*absent.pth not found'):
        run_training(spec_for(data, tmp_path / 'i', 'upernet', init=str(tmp_path / 'absent.pth')))
    torch.save({'foo.weight': torch.zeros(2)}, tmp_path / 'foreign.pth')
    with pytest.raises(ForgelocError, match='matches none'):
        run_training(spec_for(data, tmp_path / 'i', 'upernet', init=str(tmp_path / 'foreign.pth')))


def test_init_fills_both_streams_reports_it_and_refuses_a_partial_file(data, tmp_path):
    """A user's local torchvision ResNet file (a freshly built resnet18, nothing downloaded) fills both streams of
    upernet_bayar (7x7 stem) and the run's best.pt records the report; a file one tensor short is refused naming that
    tensor, and loads with init_partial."""
    import torchvision
    sd = torchvision.models.resnet18(weights=None).state_dict()
    torch.save(sd, tmp_path / 'r18.pth')
    over = dict(backbone='resnet18', width=1.0, deep_stem=False, lr=1e-9)
    run_training(spec_for(data, tmp_path / 'ok', 'upernet_bayar', init=str(tmp_path / 'r18.pth'), **over))
    ck = torch.load(tmp_path / 'ok' / 'best.pt', weights_only=False)
    assert {m: (p['filled'], p['of']) for m, p in ck['init']['parts'].items()} == {'rgb_encoder': (100, 100), 'noise_encoder': (100, 100)}
    assert sorted(ck['init']['dropped']) == ['fc.bias', 'fc.weight'] and not ck['init']['partial']
    w = ck['state_dict']['noise_encoder.layer1.0.conv1.weight']
    assert torch.allclose(w, sd['layer1.0.conv1.weight'], atol=1e-6)             # lr 1e-9: still the file's values
    del sd['layer3.1.conv2.weight']
    torch.save(sd, tmp_path / 'short.pth')
    with pytest.raises(ForgelocError, match=r'(?s)rgb_encoder: 99 of 100 .*layer3\.1\.conv2\.weight.*init_partial'):
        run_training(spec_for(data, tmp_path / 'short', 'upernet_bayar', init=str(tmp_path / 'short.pth'), **over))
    run_training(spec_for(data, tmp_path / 'part', 'upernet_bayar', init=str(tmp_path / 'short.pth'), init_partial=True, **over))
    assert torch.load(tmp_path / 'part' / 'best.pt', weights_only=False)['init']['partial']


def test_engine_dataset_and_evaluation_know_no_model_by_name():
    "No module of the engine, dataset, evaluation or pipeline names a model module: they read recipes (the registry finds the modules)."
    import re
    from forgeloc.models.registry import get_recipe, model_names
    names = sorted({get_recipe(n).build.__module__.rsplit('.', 1)[1] for n in model_names()})
    for f in ('forgeloc/train.py', 'forgeloc/evaluate.py', 'forgeloc/data/dataset.py', 'forgeloc/pipeline.py', 'forgeloc/metrics.py'):
        src = (ROOT / f).read_text()
        hits = [n for n in names if re.search(rf'models\.{n}\b|\b{n}\(', src)]
        assert not hits, f'{f} names model module(s) {hits}'
