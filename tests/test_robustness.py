"The robustness stages on a tiny sample: degrade_test builds every default condition, every model is scored on each with the clean counts."
import json

import pandas as pd
import pytest
import torch

from forgeloc.checkpoints import save_checkpoint
from forgeloc.core import load_params
from forgeloc.data.build_masks import build_masks
from forgeloc.data.extract_frames import extract_frames
from forgeloc.degrade import robustness_conditions
from forgeloc.evaluate import recipe_datasets
from forgeloc.models.registry import build_model, resolve_config
from forgeloc.pipeline import model_keys, run_stage
from forgeloc.robustness import condition_key, evaluate_conditions, read_conditions


@pytest.fixture(scope='module')
def degraded(tiny_raw, tmp_path_factory):
    d = tmp_path_factory.mktemp('robust')
    extract_frames(tiny_raw, d / 'frames', frames_per_real=3, frames_per_fake=2, workers=1, progress=False)
    build_masks(d / 'frames', d / 'masks', tiny_raw, labels=load_params()['build_masks']['labels'], workers=1, progress=False)
    run_stage('degrade_test', d / 'runs' / 'degrade_test.ipynb', frames_dir=str(d / 'frames'), masks_dir=str(d / 'masks'),
              raw_dir=str(tiny_raw), out_dir=str(d / 'robustness'))
    return d


def test_every_default_condition_keeps_the_whole_test_split(degraded):
    conditions = robustness_conditions(load_params()['robustness'])
    built = read_conditions(degraded / 'robustness')
    assert [b['condition'] for b in built] == [condition_key(*c) for c in conditions]
    n_test = (pd.read_csv(degraded / 'masks' / 'manifest.csv').split == 'test').sum()
    assert {(b['n_clean'], b['n_kept'], b['n_skipped']) for b in built} == {(n_test, n_test, 0)}
    assert {b['masks'] for b in built if b['degradation'] == 'disorganize'} == {'own'}


@pytest.mark.parametrize('model', model_keys() + model_keys(group='models_after'))
def test_every_model_is_scored_on_every_condition(degraded, model):
    torch.manual_seed(0)
    cfg = resolve_config(model, 'cpu', {'size': 64})
    ds = recipe_datasets({**cfg, 'train_set': 'both'}, degraded / 'frames', degraded / 'masks', splits=('test',))['test']
    rec, _ = evaluate_conditions(build_model(cfg).eval(), cfg, ds, degraded / 'robustness', degraded / 'masks', progress=False)
    assert len(rec['conditions']) == len(read_conditions(degraded / 'robustness'))
    for key, c in rec['conditions'].items():
        assert c['n_images'] == rec['n_clean'] == len(ds) and c['n_built'] == c['n_test'], key   # never a silently smaller test set
        assert c['both']['n_images'] == rec['clean']['both']['n_images'], key
        assert set(c['gamma']) == {'both', 'shallow', 'deep'}


def test_the_stage_notebooks_write_metrics_plots_and_figures(degraded):
    d = degraded
    cfg = resolve_config('fcn', 'cpu', {'size': 64, 'width': 0.125})
    ck = save_checkpoint({'state_dict': build_model(cfg).state_dict(), 'cfg': cfg, 'epoch': 0, 'val': {'val_auc': 0.5}},
                         d / 'models' / 'fcn' / 'best.pt')
    run_stage('robustness', d / 'runs' / 'robustness.ipynb', key='fcn', frames_dir=str(d / 'frames'), masks_dir=str(d / 'masks'),
              conditions_dir=str(d / 'robustness'), checkpoint=str(ck), metrics_path=str(d / 'metrics' / 'fcn.json'),
              plot_path=str(d / 'plots' / 'fcn.csv'), figure_path=str(d / 'figures' / 'examples' / 'fcn.png'))
    rec = json.loads((d / 'metrics' / 'fcn.json').read_text())
    assert rec['model'] == 'fcn' and len(rec['conditions']) == len(read_conditions(d / 'robustness'))
    plot = pd.read_csv(d / 'plots' / 'fcn.csv')
    assert len(plot) == 3 * len(rec['conditions']) and {'pixel_f1_all_gamma', 'image_auc_gamma'} <= set(plot.columns)
    assert (d / 'figures' / 'examples' / 'fcn.png').stat().st_size > 10_000
    params = d / 'params.yaml'
    params.write_text('train:\n  models:\n    fcn: {preset: cpu}\n')
    run_stage('robustness_report', d / 'runs' / 'report.ipynb', metrics_dir=str(d / 'metrics'), figure_dir=str(d / 'figures'),
              markdown_path=str(d / 'robustness.md'), params_file=str(params))
    text = (d / 'robustness.md').read_text()
    assert '| model | clean | benco blur 11' in text and 'Image AUC' in text and '| fcn |' in text
    for f in ('pixel_f1_all', 'pixel_f1_all_gamma', 'image_auc', 'image_auc_gamma'):
        assert (d / 'figures' / f'{f}.png').stat().st_size > 10_000, f
