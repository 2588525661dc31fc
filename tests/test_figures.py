"The figures stage's library (forgeloc.figures) on a tiny hand-made sample and a one-epoch FCN: files, determinism, bad input."
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from forgeloc.core import ForgelocError
from forgeloc.figures import FIGURE_FILES, make_figures, parse_layers, tsne_points
from forgeloc.models.registry import get_recipe, model_names, resolve_config
from forgeloc.pipeline import run_stage
from forgeloc.launch import run_training

ROOT = Path(__file__).resolve().parents[1]


def toy_sample(root, n=6, size=64, seed=0):
    "frames/ and masks/ of a tiny FF++-like manifest: per split n real frames and n fakes of two methods (altered square)."
    rng = np.random.default_rng(seed)
    (root / 'frames' / 'frames').mkdir(parents=True); (root / 'masks' / 'masks').mkdir(parents=True)
    rows = []
    for split in ('train', 'val', 'test'):
        for k in range(n):
            for label, method in ((0, 'original'), (1, 'Blur'), (1, 'Bright')):
                item = f'{split}_{method}_{k}'
                img = rng.integers(0, 255, (size, size, 3)).astype(np.uint8)
                mask = np.zeros((size, size), np.uint8)
                if label:
                    a = int(rng.integers(4, size // 2))
                    sl = np.s_[a:a + size // 3, a:a + size // 3]
                    img[sl] = cv2.blur(img, (7, 7))[sl] // (1 if method == 'Blur' else 2) + (0 if method == 'Blur' else 120)
                    mask[sl] = 255
                cv2.imwrite(str(root / 'frames' / 'frames' / f'{item}.png'), img)
                cv2.imwrite(str(root / 'masks' / 'masks' / f'{item}.png'), mask)
                rows.append({'item': item, 'dataset': 'toy', 'source': f'v/{k:03d}.mp4' if not label else f'm/{method}/{k:03d}.mp4',
                             'frame': 0, 'label': label, 'method': method, 'split': split,
                             'pair_source': f'v/{k:03d}.mp4' if label else '', 'mask': f'masks/{item}.png'})
    pd.DataFrame(rows).to_csv(root / 'masks' / 'manifest.csv', index=False)
    return root


@pytest.fixture(scope='module')
def toy(tmp_path_factory):
    "The tiny sample and models/fcn/{best.pt,history.json} after one epoch at 64 px."
    root = toy_sample(tmp_path_factory.mktemp('figures'))
    run_training(dict(cfg=resolve_config('fcn', 'cpu', {'epochs': 1, 'batch_size': 8, 'size': 64}), frames_dir=str(root / 'frames'),
                      masks_dir=str(root / 'masks'), out_dir=str(root / 'models' / 'fcn'), live_dir='', seed=0, device='cpu',
                      progress=False))
    return root


def figures(toy, out, **kw):
    return make_figures(['fcn'], toy / 'frames', toy / 'masks', out, toy / 'models', toy / 'plots', **{'seed': 3, 'perplexity': 5, 'n_grid': 3, **kw})


def test_every_figure_is_written_small_and_deterministic(toy, tmp_path):
    a, b = figures(toy, tmp_path / 'a'), figures(toy, tmp_path / 'b')
    for name in FIGURE_FILES:
        p = tmp_path / 'a' / name
        assert (p / 'fcn.png').exists() if not name.endswith('.png') else p.exists(), name
    for name, p in a['paths'].items():
        assert 0 < p.stat().st_size < 300_000, (name, p.stat().st_size)
        q = tmp_path / 'b' / p.relative_to(tmp_path / 'a')
        assert hashlib.sha1(p.read_bytes()).digest() == hashlib.sha1(q.read_bytes()).digest(), f'{name} differs between two runs'
    da, db = a['data']['models']['fcn'], b['data']['models']['fcn']
    np.testing.assert_array_equal(da['tsne'], db['tsne'])          # same seed -> same t-SNE coordinates
    assert da['tsne'].shape == (18, 2) and da['embed_shape'][0] == 18   # one row per test frame
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(30, 8))
    (y1, i1), (y2, i2), (_, i3) = (tsne_points(feats, seed, 5, max_points=10) for seed in (1, 1, 2))
    np.testing.assert_array_equal(y1, y2); np.testing.assert_array_equal(i1, i2)
    assert y1.shape == (10, 2) and len(set(i1)) == 10 and not np.array_equal(i1, i3)   # a seeded subset of max_points rows
    mm = da['mean_maps']
    assert set(mm['means']) == {'toy/original', 'toy/Blur', 'toy/Bright'} and mm['overall'].shape == (64, 64)
    np.testing.assert_allclose(sum(mm['counts'][g] * (mm['means'][g] - mm['overall']) for g in mm['means']), 0, atol=1e-9)


def test_curves_are_read_from_the_evaluate_csv_when_present(toy, tmp_path):
    plots = tmp_path / 'plots'
    (plots / 'roc').mkdir(parents=True)
    pd.DataFrame({'fpr': [0.0, 0.5, 1.0], 'tpr': [0.0, 1.0, 1.0], 'threshold': [1.0, 0.5, 0.0]}).to_csv(plots / 'roc' / 'fcn.csv', index=False)
    res = make_figures(['fcn'], toy / 'frames', toy / 'masks', tmp_path / 'f', toy / 'models', plots, perplexity=5, n_grid=2)
    assert res['data']['curves'] == {'roc': {'fcn': 'csv'}, 'pr': {'fcn': 'predictions'}}


def test_bad_input_gives_a_clear_message(toy, tmp_path):
    with pytest.raises(ForgelocError, match=r"models/nope/best.pt not found: train model 'nope' first"):
        make_figures(['fcn', 'nope'], toy / 'frames', toy / 'masks', tmp_path, toy / 'models')
    man = pd.read_csv(toy / 'masks' / 'manifest.csv', keep_default_na=False)
    masks = tmp_path / 'masks'
    (masks / 'masks').mkdir(parents=True)
    for f in (toy / 'masks' / 'masks').iterdir():
        (masks / 'masks' / f.name).write_bytes(f.read_bytes())
    man[man.split != 'test'].to_csv(masks / 'manifest.csv', index=False)           # no test frames
    with pytest.raises(ForgelocError, match=r"figures of fcn: no frames in split 'test'"):
        make_figures(['fcn'], toy / 'frames', masks, tmp_path / 'f', toy / 'models')
    with pytest.raises(ForgelocError, match=r"no module 'features.99'"):
        make_figures(['fcn'], toy / 'frames', toy / 'masks', tmp_path / 'f', toy / 'models', layers={'fcn': ['features.99']})
    with pytest.raises(ForgelocError, match='no models'):
        make_figures([], toy / 'frames', toy / 'masks', tmp_path / 'f', toy / 'models')
    assert parse_layers('recipe', ['fcn']) == {}
    assert parse_layers('fcn:features.0, features.8', ['fcn']) == {'fcn': ['features.0', 'features.8']}
    with pytest.raises(ForgelocError, match="names model 'vit'"):
        parse_layers('vit:blocks.0', ['fcn'])
    with pytest.raises(ForgelocError, match='figures.layers'):
        parse_layers('features.0', ['fcn'])


def test_the_stage_notebook_runs_on_the_models_of_params(toy, tmp_path):
    params = yaml.safe_load((ROOT / 'params.yaml').read_text())
    params['train']['models'] = {'fcn': {'preset': 'cpu'}}
    params['train'].pop('models_after', None)
    (tmp_path / 'params.yaml').write_text(yaml.safe_dump(params))
    run_stage('figures', tmp_path / 'figures.ipynb', frames_dir=str(toy / 'frames'), masks_dir=str(toy / 'masks'),
              models_dir=str(toy / 'models'), plots_dir=str(tmp_path / 'plots'), out_dir=str(tmp_path / 'out'),
              params_file=str(tmp_path / 'params.yaml'), perplexity=5, n_grid=2)
    assert sorted(p.relative_to(tmp_path / 'out').as_posix() for p in (tmp_path / 'out').rglob('*.png')) == sorted(
        ['feature_maps/fcn.png', 'gradcam/fcn.png', 'grid.png', 'mean_maps/fcn.png', 'noise_stats.png', 'pr.png', 'roc.png', 'training_curves.png', 'tsne/fcn.png'])


def test_figures_name_no_model():
    "Layers come from the recipes: the library and the stage notebook name no model module or model."
    names = sorted({get_recipe(n).build.__module__.rsplit('.', 1)[1] for n in model_names()} | set(model_names()))
    for f in ('forgeloc/figures.py', 'nbs/pipeline/figures.ipynb'):
        src = (ROOT / f).read_text()
        hits = [n for n in names if re.search(rf'models\.{n}\b|\b{n}\(|[\'"]{n}[\'"]', src)]
        assert not hits, f'{f} names model(s) {hits}'


def test_an_image_level_model_gets_no_mean_maps(toy, tmp_path, monkeypatch):
    "A recipe with localizes=False (an image-level classifier: its map is a placeholder) gets t-SNE, feature maps and the Grad-CAM of its score, no mean maps."
    from forgeloc.models.registry import get_recipe
    monkeypatch.setattr(get_recipe('fcn'), 'localizes', False, raising=False)
    res = figures(toy, tmp_path / 'f', n_grid=2)
    assert 'mean_maps/fcn' not in res['paths'] and 'tsne/fcn' in res['paths'] and res['paths']['grid'].exists()
    assert 'gradcam/fcn' in res['paths'] and res['data']['models']['fcn']['gradcam']['target'] == 'score'   # Grad-CAM of the score
