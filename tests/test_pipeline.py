"Each stage notebook, executed through papermill with tiny parameters, on a tiny sample dataset."
import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from forgeloc.pipeline import run_stage


def executed_source(nb_path) -> str:
    return '\n'.join(''.join(c['source']) for c in nbformat.read(nb_path, as_version=4).cells)


@pytest.fixture(scope='module')
def pipeline(tiny_raw, tmp_path_factory):
    "Run the four stages in order into a temporary folder; return their paths."
    d = tmp_path_factory.mktemp('pipeline')
    p = {'raw': tiny_raw, 'frames': d / 'frames', 'masks': d / 'masks', 'model': d / 'fcn' / 'best.pt', 'runs': d / 'runs',
         'metrics': d / 'metrics.json', 'groups': d / 'groups.csv', 'roc': d / 'roc.csv', 'pr': d / 'pr.csv', 'figure': d / 'pred.png'}
    run_stage('extract_frames', p['runs'] / 'extract_frames.ipynb', raw_dir=str(tiny_raw), out_dir=str(p['frames']),
              frames_per_real=3, frames_per_fake=2)
    run_stage('build_masks', p['runs'] / 'build_masks.ipynb', frames_dir=str(p['frames']), raw_dir=str(tiny_raw),
              out_dir=str(p['masks']))
    run_stage('train', p['runs'] / 'train.ipynb', key='fcn', frames_dir=str(p['frames']), masks_dir=str(p['masks']),
              out_dir=str(d / 'fcn'), overrides={'preset': 'cpu', 'epochs': 1, 'width': 0.125, 'batch_size': 8},
              live_dir=str(p['runs'] / 'live'))
    run_stage('evaluate', p['runs'] / 'evaluate.ipynb', key='fcn', frames_dir=str(p['frames']), masks_dir=str(p['masks']),
              checkpoint=str(p['model']), metrics_path=str(p['metrics']), groups_path=str(p['groups']), run_path=str(d / 'run.json'),
              roc_path=str(p['roc']), pr_path=str(p['pr']), figure_path=str(p['figure']), n_examples=3)
    return p


def test_extract_frames(pipeline):
    man = pd.read_csv(pipeline['frames'] / 'manifest.csv')
    assert set(man.dataset) == {'ffpp', 'casia2'}
    assert set(man.split) == {'train', 'val', 'test'}
    assert {'original', 'Deepfakes', 'Face2Face', 'FaceSwap'} <= set(man.method)
    assert man.groupby('source').size().max() <= 3              # frames_per_real=3 reached the notebook
    assert all((pipeline['frames'] / 'frames' / f'{i}.png').exists() for i in man.item)
    assert (pipeline['frames'] / 'skipped.csv').exists()
    assert 'frames_per_real = 3' in executed_source(pipeline['runs'] / 'extract_frames.ipynb')


def test_build_masks(pipeline):
    man = pd.read_csv(pipeline['masks'] / 'manifest.csv')
    assert (man[man.label == 0].mask_fraction == 0).all()
    fake = man[man.label == 1]
    assert (fake.mask_fraction > 0).mean() > 0.8 and fake.mask_fraction.max() < 1
    assert all((pipeline['masks'] / m).exists() for m in man['mask'])
    ff = man[man.dataset == 'ffpp']                               # params.yaml's labels reached the notebook
    assert 'fakeness' in man.columns and ff.fakeness.notna().all() and man[man.dataset != 'ffpp'].fakeness.isna().all()
    assert all((pipeline['masks'] / f).exists() for f in ff.fakeness)


def test_every_label_kind_through_the_notebooks(tiny_raw, tmp_path):
    "With the landmarks extra: extract_frames(landmarks=True), then build_masks with every kind, through papermill."
    pytest.importorskip('dlib')
    from forgeloc.data.labels import read_label
    run_stage('extract_frames', tmp_path / 'e.ipynb', raw_dir=str(tiny_raw), out_dir=str(tmp_path / 'frames'),
              frames_per_real=1, frames_per_fake=1, landmarks=True)
    run_stage('build_masks', tmp_path / 'b.ipynb', frames_dir=str(tmp_path / 'frames'), raw_dir=str(tiny_raw),
              out_dir=str(tmp_path / 'masks'), labels='binary,hull,face_regions,fakeness,noise', ones_methods='FaceSwap')
    man = pd.read_csv(tmp_path / 'masks' / 'manifest.csv', keep_default_na=False)
    ff = man[man.dataset == 'ffpp']
    assert len(ff) > 0 and all((ff[k] != '').all() for k in ('hull', 'face_regions', 'fakeness', 'noise'))
    assert (man[man.dataset != 'ffpp'].hull == '').all() and (man.noise != '').all()
    full = ff[ff.method == 'FaceSwap'].iloc[0]
    assert read_label(tmp_path / 'masks' / full.hull, 'hull').all() and read_label(tmp_path / 'masks' / full.fakeness, 'fakeness').min() == 1
    assert read_label(tmp_path / 'masks' / ff.face_regions.iloc[0], 'face_regions').shape == (5, 128, 128)
    assert 'binary,hull,face_regions,fakeness,noise' in executed_source(tmp_path / 'b.ipynb')


def test_train_and_evaluate(pipeline):
    import torch
    ckpt = torch.load(pipeline['model'], weights_only=False)
    assert ckpt['cfg']['epochs'] == 1 and ckpt['cfg']['width'] == 0.125
    assert '--preset cpu --epochs 1 --width 0.125 --batch_size 8' in executed_source(pipeline['runs'] / 'train.ipynb')
    assert (pipeline['model'].parent / 'last.pt').exists() and (pipeline['runs'] / 'live' / 'metrics.json').exists()
    m = json.loads(pipeline['metrics'].read_text())
    assert m['model'] == 'fcn' and m['n_params'] > 1000 and m['train_seconds'] > 0
    assert m['resolution'] == 'original' and m['train_set'] == 'both'
    from forgeloc.metrics import METRICS
    for k in METRICS:                                             # every convention, flat (dvc metrics show), null = undefined
        assert k in m and (m[k] is None or 0 <= m[k] <= 1), k
    notes = json.loads((pipeline['metrics'].parent / 'run.json').read_text())
    for k in METRICS:
        assert (m[k] is None) == (k in notes['undefined']['both']), k   # every null has its reason
    assert set(notes['conventions']) == set(METRICS)
    assert all(set(METRICS) <= set(m[d]) for d in ('both', 'shallow', 'deep'))   # the test domains of Table III
    assert m['both']['n_images'] == m['shallow']['n_images'] + m['deep']['n_images']
    assert m['pixel_f1_all'] == m['both']['pixel_f1_all'] and 'real' in m['both']['class_recall']
    assert 'ffpp' in m['by_dataset'] and 'ffpp/Deepfakes' in m['by_method']
    roc = pd.read_csv(pipeline['roc'])
    assert list(roc.columns) == ['fpr', 'tpr', 'threshold'] and roc.tpr.iloc[-1] == 1.0
    pr = pd.read_csv(pipeline['pr'])
    assert list(pr.columns) == ['recall', 'precision', 'threshold'] and pr.recall.iloc[0] == 1.0
    assert pipeline['figure'].stat().st_size > 10_000
    run = json.loads((pipeline['metrics'].parent / 'run.json').read_text())['params']
    assert run['threshold'] == 0.5 and run['resolution'] == 'original'
    test_rows = pd.read_csv(pipeline['masks'] / 'manifest.csv').query("split == 'test'")
    groups = pd.read_csv(pipeline['groups'])
    assert list(groups.columns[:5]) == ['level', 'group', 'domain', 'dataset', 'method']
    assert list(groups[groups.level == 'domain'].group) == ['both', 'shallow', 'deep']
    assert set(groups[groups.level == 'dataset'].group) == set(test_rows.dataset) == set(m['by_dataset'])
    assert {f'ffpp/{m}' for m in ('Deepfakes', 'Face2Face', 'FaceSwap')} <= set(groups[groups.level == 'method'].group)


def test_shallowfake_benchmarks_flow_through_both_stages(tmp_path):
    "NIST16 (black = manipulated, masks named by a reference list) and COVERAGE, in their own layouts, end as 1 = manipulated masks."
    import cv2
    import numpy as np
    from forgeloc.data.build_masks import build_masks
    from forgeloc.data.extract_frames import extract_frames
    raw = tmp_path / 'raw'
    rng = np.random.default_rng(0)
    img = lambda: rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    nist = raw / 'NC2016'
    (nist / 'probe').mkdir(parents=True); (nist / 'mask').mkdir()
    cv2.imwrite(str(nist / 'probe' / 'NC2016_0001.jpg'), img())
    cv2.imwrite(str(nist / 'probe' / 'NC2016_0002.jpg'), img())
    m = np.full((48, 64), 255, np.uint8); m[10:30, 20:50] = 0                      # black marks the manipulation
    cv2.imwrite(str(nist / 'mask' / 'NC2016_9_mask.png'), m)
    (nist / 'NC2016_list.txt').write_text('probe/NC2016_0001.jpg\nprobe/NC2016_0002.jpg mask/NC2016_9_mask.png\n')
    cov = raw / 'COVERAGE'
    (cov / 'image').mkdir(parents=True); (cov / 'mask').mkdir()
    cv2.imwrite(str(cov / 'image' / '1.tif'), img()); cv2.imwrite(str(cov / 'image' / '1t.tif'), img())
    c = np.zeros((48, 64), np.uint8); c[5:20, 5:25] = 255
    cv2.imwrite(str(cov / 'mask' / '1forged.tif'), c)
    frames = extract_frames(raw, tmp_path / 'frames', image_size=32, progress=False)
    assert 'NC2016/probe/NC2016_0001.jpg' not in set(frames.source)               # the UPerNet paper: NIST16 targets only
    frames = extract_frames(raw, tmp_path / 'frames', image_size=32, nist16_nontarget=True, progress=False)
    assert set(frames.dataset) == {'nist16', 'coverage'} and set(frames.split) == {'test'}
    masks = build_masks(tmp_path / 'frames', tmp_path / 'masks', raw, progress=False).set_index('source')
    def mask_of(src):
        return cv2.imread(str(tmp_path / 'masks' / masks.loc[src, 'mask']), cv2.IMREAD_GRAYSCALE) > 127
    expect = cv2.resize((m == 0).astype(np.uint8), (32, 32), interpolation=cv2.INTER_NEAREST).astype(bool)
    assert (mask_of('NC2016/probe/NC2016_0002.jpg') == expect).all()
    assert not mask_of('NC2016/probe/NC2016_0001.jpg').any()
    assert abs(masks.loc['COVERAGE/image/1t.tif', 'mask_fraction'] - (c > 0).mean()) < 0.03
