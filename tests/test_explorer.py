"The JupyterLab explorer, driven from Python: each widget changes what the panel shows."
import numpy as np
import pandas as pd
import pytest

pytest.importorskip('ipywidgets')
from forgeloc.core import ForgelocError
from forgeloc.explorer import Explorer, demo_workspace, sample_panel


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    return demo_workspace(tmp_path_factory.mktemp('explorer'))


@pytest.fixture
def ex(ws):
    return Explorer(**ws, split='test')


def test_model_keeps_the_frame_and_changes_the_map(ex):
    ex.w_group.value = 'ffpp/Face2Face'
    ex.w_sample.value = 1
    item, fcn = ex.panel['row']['item'], ex.panel
    ex.w_model.value = 'upernet'
    assert ex.panel['row']['item'] == item
    assert np.array_equal(ex.panel['image'], fcn['image']) and np.array_equal(ex.panel['mask'], fcn['mask'])
    assert not np.allclose(ex.panel['prob'], fcn['prob'])
    assert ex.panel['metrics']['score'] != fcn['metrics']['score']
    assert ex.w_images['map'].value != b'' and 'upernet' in ex.w_info.value


def test_split_group_and_sample(ex, ws):
    man = pd.read_csv(ws['masks_dir'] / 'manifest.csv')
    assert len(ex.indices) == (man.split == 'test').sum() and ex.w_sample.max == len(ex.indices) - 1
    ex.w_split.value = 'train'
    assert len(ex.indices) == (man.split == 'train').sum() and ex.panel['row']['split'] == 'train'
    labels = [v for _, v in ex.w_group.options]
    assert 'casia2/splice' in labels and 'ffpp/original' in labels
    ex.w_group.value = 'casia2/splice'
    n = ((man.split == 'train') & (man.dataset == 'casia2') & (man.method == 'splice')).sum()
    assert ex.w_sample.max == n - 1
    seen = set()
    for k in range(n):
        ex.w_sample.value = k
        assert ex.panel['row']['method'] == 'splice' and ex.panel['metrics']['label'] == 'manipulated'
        seen.add(ex.panel['row']['item'])
    assert len(seen) == n
    ex.w_group.value = 'ffpp/original'
    assert ex.panel['metrics']['label'] == 'authentic' and ex.panel['mask'].max() == 0
    assert np.isnan(ex.panel['metrics']['pixel_f1']) and 'n/a' in ex.w_metrics.value


def test_threshold_changes_the_thresholded_numbers_only(ex):
    ex.w_group.value = 'ffpp/Deepfakes'
    before = dict(ex.panel['metrics'])
    preds = dict(ex._preds)
    ex.w_threshold.value = 0.0
    m = ex.panel['metrics']
    assert m['score'] == before['score'] and m['marked_fraction'] == 1.0 and m['decision'] == 'manipulated'
    assert m['pixel_f1'] == pytest.approx(2 * m['mask_fraction'] / (1 + m['mask_fraction']))   # everything marked
    ex.w_threshold.value = 1.0
    assert ex.panel['metrics']['marked_fraction'] == 0.0 and ex.panel['metrics']['pixel_f1'] == 0.0
    assert ex._preds == preds                                          # no new prediction for a threshold
    overlay = ex.panel['overlay']
    ex.w_threshold.value = 0.0
    assert not np.array_equal(overlay, ex.panel['overlay'])            # the outline moved


def test_bad_input(ws, ex):
    with pytest.raises(ForgelocError, match='no checkpoints found'):
        Explorer({}, ws['frames_dir'], ws['masks_dir'])
    with pytest.raises(ForgelocError, match='build_masks'):
        Explorer(ws['checkpoints'], ws['frames_dir'], ws['frames_dir'] / 'nowhere')
    with pytest.raises(ForgelocError, match='out of range'):
        sample_panel(ex.ds, ex.pred, len(ex.ds))


def test_detection_only_panel_and_zhang_pixel_f1(ex):
    "No map panel for a model that does not localize; Zhang et al.'s empty-on-empty pixel F1 on authentic frames."
    p = sample_panel(ex.ds, ex.pred, 0, localizes=False)
    assert p['map'] is None and p['overlay'] is None and np.isnan(p['metrics']['marked_fraction'])
    ex.w_group.value = 'ffpp/original'
    ex.w_threshold.value = 1.0                                          # nothing marked: empty on empty
    assert ex.panel['metrics']['pixel_f1_all'] == 1.0 and np.isnan(ex.panel['metrics']['pixel_f1'])
    ex.w_threshold.value = 0.0                                          # everything marked on an empty mask
    assert ex.panel['metrics']['pixel_f1_all'] == 0.0
