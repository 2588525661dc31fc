"The `forgeloc` console command: images, folders and videos in, scores, maps and overlays out; bad input gets one clear line."
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from forgeloc.cli import main
from forgeloc.data.io import write_video
from forgeloc.models.registry import build_model, resolve_config
from forgeloc.checkpoints import save_checkpoint


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    "A tiny untrained FCN checkpoint (the engine's writer), an image folder and a short face video."
    from skimage import data as skdata
    d = tmp_path_factory.mktemp('cli')
    torch.manual_seed(0)
    cfg = resolve_config('fcn', 'cpu', {'size': 64})
    ck = save_checkpoint({'state_dict': build_model(cfg).state_dict(), 'cfg': cfg, 'epoch': 0}, d / 'fcn' / 'best.pt')
    face = cv2.resize(skdata.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    pics = d / 'in' / 'pics'
    (pics / 'sub').mkdir(parents=True)
    cv2.imwrite(str(pics / 'face.jpg'), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(pics / 'sub' / 'noise.png'), np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    (pics / 'sub' / 'truncated.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a jpeg')
    (pics / 'notes.json').write_text('{}')
    write_video(d / 'in' / 'clip.mp4', np.stack([np.roll(face, 3 * k, axis=1) for k in range(10)]))
    return d, ck


def run(argv, capsys):
    code = main([*map(str, argv), '--quiet'])
    return code, capsys.readouterr().err.strip()


def test_folder_and_video(setup, capsys):
    d, ck = setup
    out = d / 'out'
    code, err = run(['-c', ck, d / 'in' / 'pics', d / 'in' / 'clip.mp4', '-o', out, '--frames', '3'], capsys)
    assert code == 0, err
    t = pd.read_csv(out / 'scores.csv', keep_default_na=False)
    assert sorted(t[t.kind == 'image'].name) == ['pics/face', 'pics/sub/noise']
    frames = t[t.kind == 'frame']
    assert frames.frame.astype(int).tolist() == [0, 4, 9]                       # 3 evenly spaced of 10
    video = t[t.kind == 'video'].iloc[0]
    assert abs(video.score - frames.score.mean()) < 1e-5 and int(video.n_frames) == 3
    assert (frames.x0.astype(str) != '').all()                                  # videos: face crops by default
    assert (t[t.kind == 'image'].x0.astype(str) == '').all()                    # images: whole by default
    for r in t.itertuples():
        assert (out / r.map).is_file() and (out / r.overlay).is_file()
        assert 0 <= r.score <= 1 and r.decision == ('manipulated' if r.score >= 0.5 else 'authentic')
    assert cv2.imread(str(out / 'maps/pics/sub/noise.png'), cv2.IMREAD_UNCHANGED).shape == (90, 120)
    assert cv2.imread(str(out / 'overlays/clip/frame_000004.png')).shape == (256, 256, 3)
    assert (out / 'maps/clip/video.png').is_file() and (out / 'overlays/clip/video.png').is_file()
    sk = pd.read_csv(out / 'skipped.csv')
    assert [Path(p).name for p in sk.input] == ['truncated.jpg'] and 'cannot read image' in sk.reason[0]
    s = json.loads((out / 'scores.json').read_text())
    assert (s['model'], s['n_images'], s['n_videos'], s['n_frames'], s['n_skipped'], s['n_ignored_files']) == ('fcn', 2, 1, 3, 1, 1)
    assert not list(out.rglob('*.tmp'))
    assert '2 image(s) and 1 video(s) (3 frames)' in err and 'skipped.csv' in err


def test_video_options_and_faces_on_images(setup, capsys):
    d, ck = setup
    code, _ = run(['-c', ck, d / 'in' / 'clip.mp4', '--no-faces', '--every', '4', '-o', d / 'o1'], capsys)
    t = pd.read_csv(d / 'o1' / 'scores.csv', keep_default_na=False)
    assert code == 0 and t[t.kind == 'frame'].frame.astype(int).tolist() == [0, 4, 8]
    assert (t.x0.astype(str) == '').all()
    code, _ = run(['-c', ck, d / 'in' / 'pics', '--faces', '-o', d / 'o2'], capsys)
    t, sk = pd.read_csv(d / 'o2' / 'scores.csv'), pd.read_csv(d / 'o2' / 'skipped.csv')
    assert code == 0 and t.name.tolist() == ['pics/face']
    assert any('no face found' in r for r in sk.reason)
    # the threshold decides the label and the marked area, not the score
    run(['-c', ck, d / 'in' / 'pics' / 'face.jpg', '-t', '0', '-o', d / 'o3'], capsys)
    run(['-c', ck, d / 'in' / 'pics' / 'face.jpg', '-t', '1', '-o', d / 'o4'], capsys)
    lo, hi = (pd.read_csv(d / o / 'scores.csv').iloc[0] for o in ('o3', 'o4'))
    assert lo.score == hi.score and lo.manipulated_fraction == 1.0 and lo.decision == 'manipulated'
    assert hi.decision == 'authentic'


def test_bad_input_gets_one_line(setup, capsys, tmp_path):
    d, ck = setup
    img = d / 'in' / 'pics' / 'face.jpg'
    (tmp_path / 'text.pt').write_text('hello')
    save_checkpoint({'state_dict': {}, 'cfg': {'model': 'nosuchnet', 'size': 64}, 'epoch': 0}, tmp_path / 'other.pt')
    cases = [(['-c', tmp_path / 'missing.pt', img], 'checkpoint ' + str(tmp_path / 'missing.pt') + ' not found'),
             (['-c', tmp_path / 'text.pt', img], 'text.pt is corrupt or not a PyTorch file'),
             (['-c', tmp_path / 'other.pt', img], "holds model 'nosuchnet', which this forgeloc does not register"),
             (['-c', ck, tmp_path / 'nope.png'], 'input ' + str(tmp_path / 'nope.png') + ' does not exist'),
             (['-c', ck, img, '-t', '2'], '--threshold must lie in [0, 1]'),
             (['-c', ck, img, '--frames', '0'], 'parameter `--frames` must be a positive int'),
             (['-c', ck, img, '--device', 'tpu'], "unknown device 'tpu'")]
    for argv, msg in cases:
        code, err = run([*argv, '-o', tmp_path / 'o'], capsys)
        assert code == 2 and msg in err and err.startswith('forgeloc: error:') and '\n' not in err, (argv, err)
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'a.txt').write_text('x')
    code, err = run(['-c', ck, tmp_path / 'empty', '-o', tmp_path / 'o'], capsys)
    assert code == 2 and 'no image or video files in' in err
    code, err = run(['-c', ck, d / 'in' / 'pics' / 'sub' / 'truncated.jpg', '-o', tmp_path / 'o5'], capsys)
    assert code == 1 and '0 image(s) and 0 video(s)' in err          # nothing analysed: exit 1, reason recorded
    assert 'cannot read image' in pd.read_csv(tmp_path / 'o5' / 'skipped.csv').reason[0]
    (tmp_path / 'fake.mp4').write_bytes(b'\x00' * 100)
    code, err = run(['-c', ck, tmp_path / 'fake.mp4', img, '-o', tmp_path / 'o6'], capsys)
    assert code == 0 and 'cannot decode video' in pd.read_csv(tmp_path / 'o6' / 'skipped.csv').reason[0]
    with pytest.raises(SystemExit) as e:                               # argparse: mutually exclusive options
        main(['-c', str(ck), str(img), '--frames', '3', '--every', '2'])
    assert e.value.code == 2


def test_console_script_is_installed(setup, tmp_path):
    "The package installs `forgeloc` (settings.ini console_scripts); an error is one line, no traceback."
    d, ck = setup
    exe = Path(sys.executable).with_name('forgeloc')
    assert exe.exists(), f'{exe} missing: pip install -e . registers the console script'
    r = subprocess.run([str(exe), '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and '--checkpoint' in r.stdout and '--no-faces' in r.stdout
    r = subprocess.run([str(exe), '-c', str(tmp_path / 'none.pt'), str(d / 'in' / 'pics')], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count('\n') == 0 and 'Traceback' not in r.stderr
    assert 'none.pt not found' in r.stderr


def test_a_detection_only_model_writes_scores_not_maps(setup, capsys, tmp_path):
    "A recipe with localizes=False (its map is all zeros): scores are written, maps, overlays and marked fractions are not."
    from forgeloc.models.registry import RECIPES, Recipe, get_recipe, register
    d, _ = setup
    fcn = get_recipe('fcn')
    register(Recipe('detect_only_test', build=fcn.build, loss=fcn.loss, presets=fcn.presets, localizes=False,
                    score_and_map=lambda m, o, size: (o['cls'].softmax(1)[:, 1], o['cls'].new_zeros((len(o['cls']), *size)))))
    try:
        cfg = resolve_config('detect_only_test', 'cpu', {'size': 64})
        ck = save_checkpoint({'state_dict': build_model(cfg).state_dict(), 'cfg': cfg, 'epoch': 0}, tmp_path / 'det.pt')
        code, err = run(['-c', ck, d / 'in' / 'pics' / 'face.jpg', d / 'in' / 'clip.mp4', '--frames', '2', '-o', tmp_path / 'o'], capsys)
    finally:
        RECIPES.pop('detect_only_test')
    t = pd.read_csv(tmp_path / 'o' / 'scores.csv', keep_default_na=False)
    assert code == 0 and 'detection-only' in err and len(t) == 4
    assert set(t['map']) == set(t['overlay']) == set(t['manipulated_fraction']) == {''}
    assert not (tmp_path / 'o' / 'maps').exists()
    assert json.loads((tmp_path / 'o' / 'scores.json').read_text())['localizes'] is False
