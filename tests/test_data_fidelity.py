"""Fidelity of the data layer to the papers and to the public distributions (issue 8).

Each test here failed before its fix: it pins one place where the preprocessing silently differed
from a paper (Kong et al.'s noise residual) or from a benchmark as distributed (CASIA v1.0, NIST16, FF++).
"""
import inspect
import warnings

import numpy as np
import pytest
from PIL import Image

from forgeloc.core import ForgelocError


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def _photo(seed=0, h=32, w=48):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


# 1. Kong et al. eq. 4-5 / ref. [36]: the PRNU literature's wavelet Wiener filter uses the 8-tap Daubechies
#    filter (PyWavelets' db4), at 4 levels; db8 (16 taps) caps a 128 px face at 3 levels without a word.
def test_noise_residual_defaults_to_db4():
    from forgeloc.data.labels import noise_residual, wavelet_denoise
    for fn in (noise_residual, wavelet_denoise):
        assert inspect.signature(fn).parameters['wavelet'].default == 'db4', fn.__name__


def test_noise_residual_128px_runs_four_levels_silently_and_warns_when_capped():
    from forgeloc.data.labels import noise_residual
    img = _photo(1, 128, 128)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        noise_residual(img, 5.0)                          # db4 at 128 px: 4 levels, no warning
    with pytest.warns(UserWarning, match='level'):
        noise_residual(img, 5.0, wavelet='db8')           # db8 at 128 px: only 3 levels
    with pytest.warns(UserWarning, match='level'):
        noise_residual(_photo(2, 32, 32), 5.0)            # db4 at 32 px: 2 levels


# 2. CASIA v1.0 as corrected and redistributed: tampered images in Tp/CM + Tp/Sp (or Sp/CM + Sp/Sp).
@pytest.mark.parametrize('tp', ['Tp', 'Sp'])
def test_casia1_reads_cm_and_sp_subfolders(tmp_path, tp):
    from forgeloc.data.shallowfake import list_casia1
    root = tmp_path / 'CASIA1'
    _save(root / 'Au' / 'Au_ani_0001.jpg', _photo(1))
    sp, cm = 'Sp_D_CND_A_pla0005_ani0001_0281', 'Sp_S_CND_A_pla0016_pla0016_0196'
    _save(root / tp / 'Sp' / f'{sp}.jpg', _photo(2))
    _save(root / tp / 'CM' / f'{cm}.jpg', _photo(3))
    gt = root / 'CASIA 1.0 groundtruth'
    _save(gt / 'Sp' / f'{sp}_gt.png', np.zeros((32, 48), np.uint8))
    _save(gt / 'CM' / f'{cm}_gt.png', np.zeros((32, 48), np.uint8))
    recs = {r['image']: r for r in list_casia1(root)}
    assert set(recs) == {'Au_ani_0001', sp, cm}
    assert (recs[sp]['method'], recs[cm]['method']) == ('splice', 'copy_move')
    assert recs[sp]['skip_reason'] is None and recs[cm]['skip_reason'] is None
    assert recs[sp]['group'] == recs['Au_ani_0001']['group']       # shares its source ani0001


def test_casia1_without_tampered_images_is_an_error_naming_the_folders(tmp_path):
    from forgeloc.data.shallowfake import list_casia1
    root = tmp_path / 'CASIA1'
    _save(root / 'Au' / 'Au_ani_0001.jpg', _photo(1))
    (root / 'Tp' / 'Other').mkdir(parents=True)
    with pytest.raises(ForgelocError, match=r'Tp/CM'):
        list_casia1(root)


# 3. NIST16: the UPerNet paper tests on the 564 manipulated probes only (Table I: NIST16 0 real, 564 fake).
def _nist_tree(root):
    for i in (1, 2):
        _save(root / 'probe' / f'NC2016_000{i}.png', _photo(i))
    _save(root / 'mask' / 'NC2016_0002.png', np.full((32, 48), 255, np.uint8))
    ref = root / 'reference' / 'manipulation' / 'NC2016-manipulation-ref.csv'
    ref.parent.mkdir(parents=True)
    ref.write_text('ProbeFileName|ProbeMaskFileName|IsTarget|IsManipulationTypeSplice\n'
                   'probe/NC2016_0001.png||N|N\nprobe/NC2016_0002.png|mask/NC2016_0002.png|Y|Y\n')


def test_nist16_default_is_the_manipulated_probes_only(tmp_path):
    from forgeloc.data.shallowfake import list_nist16
    _nist_tree(tmp_path / 'NC2016')
    used = [r for r in list_nist16(tmp_path / 'NC2016') if not r['skip_reason']]
    assert [(r['image'], r['label']) for r in used] == [('NC2016_0002', 1)]
    both = [r for r in list_nist16(tmp_path / 'NC2016', nontarget=True) if not r['skip_reason']]
    assert sorted((r['image'], r['label']) for r in both) == [('NC2016_0001', 0), ('NC2016_0002', 1)]


def test_extract_frames_passes_nist16_nontarget(tmp_path):
    from forgeloc.data.extract_frames import extract_frames
    _nist_tree(tmp_path / 'raw' / 'NC2016')
    man = extract_frames(tmp_path / 'raw', tmp_path / 'frames', progress=False)
    assert list(man.label) == [1]
    man = extract_frames(tmp_path / 'raw', tmp_path / 'frames', nist16_nontarget=True, progress=False)
    assert sorted(man.label) == [0, 1]


# 4. FF++: Deepfakes, Face2Face, FaceSwap, NeuralTextures by default; DeepFakeDetection (real videos under
#    actors/, misaligned masks) and FaceShifter (no masks) only when named.
def _ffpp_tree(root):
    from forgeloc.data.io import write_video
    v = np.zeros((2, 16, 16, 3), np.uint8)
    yt = root / 'original_sequences' / 'youtube' / 'c23' / 'videos'
    write_video(yt / '000.mp4', v); write_video(yt / '001.mp4', v)
    write_video(root / 'original_sequences' / 'actors' / 'c23' / 'videos' / '01__walking.mp4', v)
    for m in ('Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures', 'FaceShifter'):
        write_video(root / 'manipulated_sequences' / m / 'c23' / 'videos' / '000_001.mp4', v)
    write_video(root / 'manipulated_sequences' / 'DeepFakeDetection' / 'c23' / 'videos' / '01_02__walking__ABCDEFGH.mp4', v)


def test_ffpp_default_methods_are_the_four_with_masks(tmp_path):
    from forgeloc.data.ffpp import FFPP_METHODS, list_ffpp_videos
    assert FFPP_METHODS == ('Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures')
    _ffpp_tree(tmp_path)
    rows = list_ffpp_videos(tmp_path)
    assert sorted({r['method'] for r in rows}) == ['Deepfakes', 'Face2Face', 'FaceSwap', 'NeuralTextures', 'original']
    assert sorted(r['video'] for r in rows if r['label'] == 0) == ['000', '001']


def test_ffpp_named_methods_include_dfd_with_its_actors(tmp_path):
    from forgeloc.data.ffpp import list_ffpp_videos
    _ffpp_tree(tmp_path)
    rows = list_ffpp_videos(tmp_path, methods=('Deepfakes', 'FaceShifter', 'DeepFakeDetection'))
    assert sorted({r['method'] for r in rows}) == ['DeepFakeDetection', 'Deepfakes', 'FaceShifter', 'original']
    dfd = next(r for r in rows if r['method'] == 'DeepFakeDetection')
    assert dfd['real_path'].name == '01__walking.mp4'
    assert '01__walking' in {r['video'] for r in rows if r['label'] == 0}
    with pytest.raises(ForgelocError, match='ffpp_methods'):
        list_ffpp_videos(tmp_path, methods=('Deepfake',))


def test_the_sample_shallowfakes_carry_traces_a_model_free_statistic_finds(tmp_path):
    "The CASIA-like part at the sample's size: local noise inconsistency alone separates tampered from authentic (AUC >= 0.9)."
    import yaml
    from forgeloc.core import resolve
    from forgeloc.data.sample_shallow import build_casia, trace_separation
    s = yaml.safe_load(resolve('params.yaml').read_text())['sample']
    files = build_casia(tmp_path / 'CASIA2', s['seed'], s['n_images'], s['image_size'], progress=False)
    sep = trace_separation(tmp_path / 'CASIA2')
    assert sep['all'] >= 0.9 and min(sep['splice'], sep['same_image']) >= 0.8, sep
    au = [v for k, v in files.items() if '/Au/' in k]
    assert len({v['camera'] for v in au}) > 4 and all({'cfa', 'noise_sigma', 'prnu', 'camera_quality'} <= set(v) for v in au)
