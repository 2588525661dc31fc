"Bad input gives one clear message naming the file or parameter, and loses nothing already written."
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forgeloc.core import ForgelocError
from forgeloc.data.build_masks import build_masks
from forgeloc.data.extract_frames import extract_frames
from forgeloc.data.io import write_video
from forgeloc.pipeline import run_stage, stage_notebook


def test_missing_and_empty_raw_dir(tmp_path):
    with pytest.raises(ForgelocError, match='does not exist'):
        extract_frames(tmp_path / 'absent', tmp_path / 'out')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ForgelocError, match='is empty'):
        extract_frames(tmp_path / 'empty', tmp_path / 'out')


def test_unknown_stage_name():
    with pytest.raises(ForgelocError, match="unknown stage 'fit'"):
        stage_notebook('fit')


def test_unknown_model_and_bad_values_fail_the_train_notebook(tmp_path):
    import papermill as pm
    for override, msg in (({'model': 'resnet'}, "unknown model 'resnet'"), ({'overrides': {'epochs': 0}}, 'train.epochs'),
                          ({'overrides': {'epochs': -2}}, 'train.epochs'), ({'overrides': {'preset': 'gpu'}}, "unknown preset of fcn 'gpu'"),
                          ({'overrides': {'widht': 0.5}}, 'widht'), ({'device': 'cuda'}, "'cuda' but no CUDA device")):
        if override.get('device') == 'cuda':
            import torch
            if torch.cuda.is_available():
                continue
        with pytest.raises(pm.PapermillExecutionError, match=msg):
            run_stage('train', tmp_path / 'train.ipynb', key='fcn', frames_dir=str(tmp_path), masks_dir=str(tmp_path),
                      out_dir=str(tmp_path / 'm'), live_dir=str(tmp_path / 'live'), **override)


def test_broken_video_and_short_mask_video_are_skipped_with_reasons(tiny_raw, tmp_path):
    raw = tmp_path / 'raw'
    shutil.copytree(tiny_raw, raw)
    ff = raw / 'FaceForensics++'
    real = sorted((ff / 'original_sequences/youtube/c23/videos').glob('*.mp4'))
    real[0].write_bytes(b'\x00\x00\x00\x18ftypmp42 this is not a video')          # undecodable
    mask = sorted((ff / 'manipulated_sequences/FaceSwap/masks/videos').glob('*.mp4'))[0]
    from forgeloc.data.io import read_frames, video_info
    n = video_info(mask)['n_frames']
    write_video(mask, np.stack(list(read_frames(mask, range(n - 2)).values())))    # two frames short
    out = tmp_path / 'frames'
    with pytest.warns(UserWarning, match=real[0].name):
        man = extract_frames(raw, out, frames_per_real=2, frames_per_fake=2, progress=False)
    skipped = pd.read_csv(out / 'skipped.csv')
    assert any(real[0].name in s and 'cannot decode' in r for s, r in zip(skipped.source, skipped.reason))
    assert str(real[0].relative_to(raw)) not in set(man.source)
    with pytest.warns(UserWarning, match=mask.name):
        masks = build_masks(out, tmp_path / 'masks', raw, progress=False)
    sk = pd.read_csv(tmp_path / 'masks' / 'skipped.csv')
    assert sk.reason.str.contains(f'{mask.name} has {n - 2} frames').any()
    fake = str(mask.relative_to(raw)).replace('masks/videos', 'c23/videos')
    assert fake in set(man.source) and fake not in set(masks.source)


def test_failed_run_keeps_previous_output(tiny_raw, tmp_path):
    out = tmp_path / 'frames'
    extract_frames(tiny_raw, out, frames_per_real=1, frames_per_fake=1, progress=False)
    before = sorted(p.relative_to(out) for p in out.rglob('*'))
    with pytest.raises(ForgelocError):
        extract_frames(tmp_path / 'absent', out)
    with pytest.raises(ForgelocError, match='image_size'):
        extract_frames(tiny_raw, out, image_size=-1)
    assert sorted(p.relative_to(out) for p in out.rglob('*')) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_fake_without_aligned_real_video_is_skipped_for_the_fakeness_label(tiny_raw, tmp_path):
    "A real video shorter than its fakes cannot give aligned pairs: its fakes are skipped with the reason, the rest kept."
    from forgeloc.data.io import read_frames, video_info
    raw = tmp_path / 'raw'
    shutil.copytree(tiny_raw, raw)
    real = sorted((raw / 'FaceForensics++/original_sequences/youtube/c23/videos').glob('*.mp4'))[1]
    n = video_info(real)['n_frames']
    write_video(real, np.stack(list(read_frames(real, range(n - 1)).values())))   # one frame short
    extract_frames(raw, tmp_path / 'frames', frames_per_real=1, frames_per_fake=1, progress=False)
    with pytest.warns(UserWarning, match='cannot align'):
        masks = build_masks(tmp_path / 'frames', tmp_path / 'masks', raw, labels='binary,fakeness', progress=False)
    sk = pd.read_csv(tmp_path / 'masks' / 'skipped.csv')
    bad = sk[sk.reason.str.contains(f'{real.name} has {n - 1} frames')]
    assert len(bad) > 0 and all(f'/{real.stem}_' in s for s in bad.source)
    fakes = masks[(masks.label == 1) & (masks.dataset == 'ffpp')]
    assert len(fakes) > 0 and not any(f'/{real.stem}_' in s for s in fakes.source)
    assert (fakes.fakeness.str.startswith('labels/fakeness/')).all()


def test_metrics_name_the_bad_sample_and_never_turn_undefined_into_zero():
    "NaN maps and maps of another size than their mask are errors naming the sample; undefined metrics are NaN with a reason."
    import warnings
    from forgeloc.metrics import UndefinedMetric, image_auc, localization_report, pixel_f1
    gt = np.zeros((2, 8, 8)); gt[1, 2:5, 2:5] = 1
    pr = gt * 0.9; pr[0, 0, 0] = np.nan
    with pytest.raises(ForgelocError, match="sample 'casia2/authentic/a': the predicted map has 1 NaN"):
        pixel_f1(gt, pr, names=['casia2/authentic/a', 'ffpp/Deepfakes/b'])
    with pytest.raises(ForgelocError, match=r"sample 'b': predicted map \(6, 8\) and mask \(8, 8\) differ in size"):
        pixel_f1(list(gt), [gt[0], gt[1][:6]], names=['a', 'b'])
    with pytest.warns(UndefinedMetric, match='single class'):
        assert np.isnan(image_auc([1, 1], [0.2, 0.9]))
    with warnings.catch_warnings():
        warnings.simplefilter('error')                             # the report records reasons instead of warning
        r = localization_report([1], [0.9], gt[1:], gt[1:])         # a single-class split
        e = localization_report([], [], np.zeros((0, 8, 8)), np.zeros((0, 8, 8)))   # an empty split
    assert np.isnan(r['image_auc']) and np.isnan(r['combined_f1']) and r['pixel_f1_fakes'] == 1.0
    assert 'single class' in r['undefined']['image_auc']
    assert e['n_images'] == 0 and np.isnan(e['pixel_f1_all']) and 'no images' in e['undefined']['pixel_f1_all']


def test_evaluate_refuses_an_empty_split_and_nan_maps():
    import dataclasses
    import torch
    from forgeloc.evaluate import evaluate_model
    from forgeloc.models.registry import get_recipe

    class Data(torch.utils.data.Dataset):
        def __init__(self, n):
            self.rows = pd.DataFrame({'item': [f'x/{i}' for i in range(n)], 'dataset': 'ffpp', 'method': 'original', 'label': 0})
        def __len__(self): return len(self.rows)
        def __getitem__(self, i): return {'image': torch.zeros(3, 16, 16), 'mask': torch.zeros(16, 16), 'label': 0, 'index': i}

    class Net(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.zeros(1))
        def forward(self, x): return {'x': x}
    nan_map = dataclasses.replace(get_recipe('fcn'), name='nan_map',
                                  score_and_map=lambda net, out, size: (torch.zeros(len(out['x'])), torch.full((len(out['x']), *size), float('nan'))))
    with pytest.raises(ForgelocError, match='the test split is empty'):
        evaluate_model(Net(), Data(0), nan_map, progress=False)
    with pytest.raises(ForgelocError, match="sample 'x/0': the predicted map has 256 NaN"):
        evaluate_model(Net(), Data(2), nan_map, progress=False)


def test_comparison_shows_a_missing_or_undefined_metric_as_a_dash(tmp_path):
    "An older result file without a key, or a null (undefined) value, prints '—', never 0."
    import json
    from forgeloc.compare import comparison, comparison_markdown
    rec = {'model': 'old', 'preset': 'cpu', 'n_params': 1000, 'epochs': 1, 'checkpoint_epoch': 1, 'train_seconds': 1.0,
           'threshold': 0.5, 'n_images': 4, 'n_manipulated': 2, 'image_auc': None}
    (tmp_path / 'old.json').write_text(json.dumps(rec))
    md = comparison_markdown(comparison(tmp_path))
    row = next(l for l in md.splitlines() if l.startswith('| `old`'))
    assert ' 0.000 ' not in row and row.count('—') >= 8
