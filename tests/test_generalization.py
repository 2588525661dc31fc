"Generalization (issue 15 part 4): the sample's c40 copies, the training-method filter, the experiments' commands and their tables."
import hashlib
import json
import platform

import pytest

from forgeloc.data.io import video_info

FF = 'FaceForensics++'
# sha1 over (path, sha1) of every file of the conftest sample except the manifest, built before the c40 copies existed
# (x264 is byte-reproducible on x86-64 only: forgeloc.data.io.X264_DETERMINISTIC), and the sha1 of its manifest then
C23_TREE_SHA1 = 'ac8d4b59ff2631ff23bb88cb2f842077ca651aa6'
C23_MANIFEST_SHA1 = '3b27b8b47df6688889459d0e120f3a33e20bc624'


def _c23_videos(raw):
    return sorted(p for p in (raw / FF).rglob('c23/videos/*.mp4'))


def test_every_c23_video_has_a_c40_copy(tiny_raw):
    man = json.loads((tiny_raw / 'sample_manifest.json').read_text())['files']
    c23 = _c23_videos(tiny_raw)
    assert len(c23) == 6 * 4                                  # 6 real videos, a fake per method and target
    for p in c23:
        low = p.parents[2] / 'c40' / 'videos' / p.name
        assert low.is_file(), low
        assert low.read_bytes() != p.read_bytes()
        assert video_info(low)['n_frames'] == video_info(p)['n_frames'] == 8
        assert low.stat().st_size < p.stat().st_size
        rel = low.relative_to(tiny_raw).as_posix()
        assert man[rel]['role'] == 'video' and man[rel]['quality'] == 'c40' and man[rel]['crf'] == 40
        assert man[rel]['frames_of'] == p.relative_to(tiny_raw).as_posix()
    assert len(list(tiny_raw.rglob('c40/videos/*.mp4'))) == len(c23)
    assert not list(tiny_raw.rglob('masks/c40')), 'masks are shared by every quality'


@pytest.mark.skipif(platform.machine().lower() not in ('x86_64', 'amd64'), reason='x264 bytes are reproducible on x86-64 only')
def test_c23_files_and_manifest_entries_unchanged(tiny_raw):
    h = hashlib.sha1()
    for p in sorted(p for p in tiny_raw.rglob('*') if p.is_file() and p.name != 'sample_manifest.json' and '/c40/' not in p.as_posix()):
        h.update(p.relative_to(tiny_raw).as_posix().encode()); h.update(hashlib.sha1(p.read_bytes()).digest())
    assert h.hexdigest() == C23_TREE_SHA1
    man = json.loads((tiny_raw / 'sample_manifest.json').read_text())
    man['files'] = {k: v for k, v in man['files'].items() if '/c40/' not in k}
    assert hashlib.sha1((json.dumps(man, indent=1) + '\n').encode()).hexdigest() == C23_MANIFEST_SHA1


# --- the training-method filter, the other-quality test set, the experiments and their tables --------------------------
import pandas as pd  # noqa: E402

from forgeloc.checkpoints import save_checkpoint  # noqa: E402
from forgeloc.core import ForgelocError, load_params  # noqa: E402
from forgeloc.data.build_masks import build_masks  # noqa: E402
from forgeloc.data.extract_frames import extract_frames  # noqa: E402
from forgeloc.evaluate import recipe_datasets  # noqa: E402
from forgeloc.models.registry import build_model, resolve_config  # noqa: E402
from forgeloc.params import params_problems, with_values  # noqa: E402
from forgeloc.pipeline import run_stage  # noqa: E402
from forgeloc.reports import (cross_manipulation, cross_quality, generalization_commands, generalization_markdown,  # noqa: E402
                              parse_generalization)
from forgeloc.robustness import build_quality_tests, read_conditions  # noqa: E402


@pytest.fixture(scope='module')
def frames(tiny_raw, tmp_path_factory):
    d = tmp_path_factory.mktemp('gen')
    extract_frames(tiny_raw, d / 'frames', frames_per_real=3, frames_per_fake=2, workers=1, progress=False)
    build_masks(d / 'frames', d / 'masks', tiny_raw, labels='binary', workers=1, progress=False)
    return d


def test_train_methods_keeps_only_the_named_methods_in_train_and_val(frames):
    cfg = resolve_config('fcn', 'cpu', {'size': 32, 'train_set': 'deep', 'train_methods': 'FaceSwap'})
    ds = recipe_datasets(cfg, frames / 'frames', frames / 'masks', splits=('train', 'val', 'test'))
    man = pd.read_csv(frames / 'masks' / 'manifest.csv')
    for split in ('train', 'val'):
        rows = ds[split].rows
        assert set(rows.method[rows.label == 1]) == {'FaceSwap'}, split                       # only that method's fakes
        assert (rows.label == 0).sum() == len(man.query(f"split == '{split}' and dataset == 'ffpp' and label == 0"))   # every real
    assert set(ds['test'].rows.method[ds['test'].rows.label == 1]) == {'Deepfakes', 'Face2Face', 'FaceSwap'}   # tested on every method
    every = recipe_datasets({**cfg, 'train_methods': 'all'}, frames / 'frames', frames / 'masks')['train'].rows
    assert set(every.method[every.label == 1]) == {'Deepfakes', 'Face2Face', 'FaceSwap'}
    with pytest.raises(ForgelocError, match='train_methods'):
        recipe_datasets({**cfg, 'train_methods': 'NeuralTextures'}, frames / 'frames', frames / 'masks')


def test_the_other_quality_test_set_has_the_same_frames_and_boxes(frames, tiny_raw):
    out = frames / 'quality'
    built = build_quality_tests(['c23', 'c40'], out_root=out, frames_dir=frames / 'frames', masks_dir=frames / 'masks',
                                raw_dir=tiny_raw, compression='c23')
    test = pd.read_csv(frames / 'masks' / 'manifest.csv').query("split == 'test'")
    n_deep = int((test.dataset == 'ffpp').sum())
    assert [(s['n_clean'], s['n_kept'], s['n_skipped']) for s in built] == [(len(test), len(test), 0)] * 2
    assert built[0]['n_same_as_clean'] == len(test) and built[1]['n_same_as_clean'] == len(test) - n_deep
    low = pd.read_csv(out / 'quality/c40/manifest.csv')
    assert low[['item', 'frame', 'x0', 'y0', 'x1', 'y1']].equals(test[['item', 'frame', 'x0', 'y0', 'x1', 'y1']].reset_index(drop=True))
    assert [c['condition'] for c in read_conditions(out)] == ['quality/c23', 'quality/c40']


def test_the_quality_test_notebook_scores_every_quality(frames, tiny_raw):
    cfg = resolve_config('fcn', 'cpu', {'size': 64, 'width': 0.125})
    ck = save_checkpoint({'state_dict': build_model(cfg).state_dict(), 'cfg': cfg, 'epoch': 0, 'val': {'val_auc': 0.5}},
                         frames / 'models' / 'fcn' / 'best.pt')
    run_stage('quality_test', frames / 'runs' / 'quality_test.ipynb', key='fcn', frames_dir=str(frames / 'frames'),
              masks_dir=str(frames / 'masks'), raw_dir=str(tiny_raw), checkpoint=str(ck), out_dir=str(frames / 'qt'),
              metrics_path=str(frames / 'metrics' / 'fcn.json'))
    rec = json.loads((frames / 'metrics' / 'fcn.json').read_text())
    assert rec['train_quality'] == 'c23' and list(rec['conditions']) == ['quality/c23', 'quality/c40']
    assert {c['n_images'] for c in rec['conditions'].values()} == {rec['n_clean']}
    assert rec['conditions']['quality/c23']['deep']['image_auc'] == rec['clean']['deep']['image_auc']


def test_the_experiment_commands():
    g = load_params()['generalization']
    cmds = generalization_commands(g['models'].split(','), g['qualities'].split(','), g['methods'].split(','))
    assert [c[c.index('-n') + 1] for c in cmds] == ['gen-fcn-quality-c23', 'gen-fcn-quality-c40', 'gen-fcn-method-Deepfakes',
                                                    'gen-fcn-method-Face2Face', 'gen-fcn-method-FaceSwap']
    for c in cmds:
        assert c[:4] == ['dvc', 'exp', 'run', '--temp'] and '++train.models.fcn.train_set=deep' in c and 'train.extra_seeds=none' in c
    assert cmds[1][-2:] == ['evaluate@fcn', 'quality_test@fcn'] and 'extract_frames.compression=c40' in cmds[1]
    assert 'generalization.quality_test=[fcn]' in cmds[1]
    assert cmds[3][-1] == 'evaluate@fcn' and '++train.models.fcn.train_methods=Face2Face' in cmds[3]
    assert g['quality_test'] == []                                   # the default pipeline has no quality_test stage


def test_the_tables_fill_from_collected_experiments_and_say_not_run_otherwise():
    cond = lambda auc: {'deep': {'image_auc': auc, 'pixel_f1_all': auc / 2}}
    rows = [{'Experiment': 'gen-fcn-quality-c23', 'rev': 'r1'}, {'Experiment': 'gen-fcn-method-FaceSwap', 'rev': 'r2'}]
    files = {('r1', 'metrics/generalization/fcn.json'): json.dumps({'conditions': {'quality/c23': cond(0.9), 'quality/c40': cond(0.6)}}),
             ('r1', 'metrics/evaluate/fcn.json'): json.dumps({'by_method': {f'ffpp/{m}': {'image_auc': 0.8} for m in ('Deepfakes', 'FaceSwap')}}),
             ('r2', 'metrics/evaluate/fcn.json'): json.dumps({'by_method': {'ffpp/Deepfakes': {'image_auc': 0.55}, 'ffpp/FaceSwap': {'image_auc': 0.95}}})}
    exps = parse_generalization(rows, read=lambda rev, p: files.get((rev, p)))
    cols = {'AUC': 'image_auc', 'pixel F1': 'pixel_f1_all'}
    cq = cross_quality(exps, ['fcn'], ['c23', 'c40'], cols)
    cm = cross_manipulation(exps, ['fcn'], ['Deepfakes', 'FaceSwap'], cols)
    md = generalization_markdown(cq, cm, cols)
    assert '| fcn | c23 | 0.90 | 0.45 | 0.60 | 0.30 | experiment gen-fcn-quality-c23 (r1) |' in md
    assert '| fcn | c40 | – | – | – | – | not run |' in md
    assert '| fcn | FaceSwap | 0.55 | – | 0.95 | – | experiment gen-fcn-method-FaceSwap (r2) |' in md
    assert '| fcn | Deepfakes | – | – | – | – | not run |' in md and '| fcn | all | 0.80 |' in md
    empty = generalization_markdown(cross_quality({}, ['fcn'], ['c23'], cols), cross_manipulation({}, ['fcn'], ['FaceSwap'], cols), cols)
    rows_md = [line for line in empty.splitlines() if line.startswith('| fcn |')]
    assert len(rows_md) == 3 and all(line.endswith('| not run |') and set(line.split('|')[3:-2]) == {' – '} for line in rows_md)


@pytest.mark.parametrize('change, key', [
    ({'generalization.models': 'fcn,vit'}, 'generalization.models'),
    ({'generalization.qualities': 'c23,c35'}, 'generalization.qualities'),
    ({'generalization.qualities': 'none'}, 'generalization.qualities'),
    ({'generalization.methods': 'Deepfakes,FaceSwapp'}, 'generalization.methods'),
    ({'generalization.methods': 'NeuralTextures', 'extract_frames.ffpp_methods': 'Deepfakes'}, 'generalization.methods'),
    ({'generalization.quality_test': ['vit']}, 'generalization.quality_test'),
    ({'generalization.modles': 'fcn'}, 'generalization.modles'),
    ({'train.models.fcn.train_methods': 'Deepfakez'}, 'train_methods'),
    ({'train.models.fcn.train_methods': 'Face2Face', 'extract_frames.ffpp_methods': 'Deepfakes'}, 'train.models.fcn.train_methods'),
])
def test_bad_generalization_params_are_rejected_naming_the_key(change, key, tiny_raw):
    # base.raw_dir on the conftest sample, so that a fresh clone (no data/raw yet) reports only the bad key
    found = params_problems(with_values(load_params(), {'base.raw_dir': str(tiny_raw), **change}))
    assert found and all(key in p for p in found if 'ffpp_methods' not in p or key in p), found
    assert any(key in p for p in found), found
