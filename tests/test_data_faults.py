"""The data stages on faulty raw data (issue 16): a missing or broken item changes no other item's frames, every drop
is recorded with its reason and counted on the terminal, non-UTF-8 names are skipped, a killed run leaves no
temporary folder or worker process behind, and the outputs do not depend on where the data lies."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forgeloc.data.build_masks import build_masks
from forgeloc.data.extract_frames import extract_frames

ROOT = Path(__file__).resolve().parents[1]
FF = 'FaceForensics++'
REAL = f'{FF}/original_sequences/youtube/c23/videos'
FAKES = f'{FF}/manipulated_sequences/{{}}/c23/videos'
MASKS = f'{FF}/manipulated_sequences/{{}}/masks/videos'
SMALL = dict(frames_per_real=3, frames_per_fake=2, crop='none', progress=False)     # 8-frame videos: a real draw


def copy_raw(tiny_raw, dest) -> Path:
    shutil.copytree(tiny_raw, dest)
    return dest


def frames_by_source(out) -> dict:
    man = pd.read_csv(out / 'manifest.csv')
    return {s: sorted(g.frame) for s, g in man[man.dataset == 'ffpp'].groupby('source')}


def skipped_rows(out) -> pd.DataFrame:
    return pd.read_csv(out / 'skipped.csv', keep_default_na=False)


def test_a_missing_or_truncated_video_changes_no_other_videos_frames(tiny_raw, tmp_path):
    ref = frames_by_source(_extract(copy_raw(tiny_raw, tmp_path / 'ref'), tmp_path / 'f_ref'))
    gone = f"{FAKES.format('Deepfakes')}/{sorted(os.listdir(tiny_raw / FAKES.format('Deepfakes')))[0]}"
    raw = copy_raw(tiny_raw, tmp_path / 'deleted')
    (raw / gone).unlink()
    after = frames_by_source(_extract(raw, tmp_path / 'f_deleted'))
    assert gone not in after and {s: f for s, f in ref.items() if s != gone} == after
    assert gone in set(skipped_rows(tmp_path / 'f_deleted').source)              # and the absence is recorded

    cut = f'{REAL}/000.mp4'
    raw = copy_raw(tiny_raw, tmp_path / 'truncated')
    data = (raw / cut).read_bytes()
    (raw / cut).write_bytes(data[:len(data) // 2])
    with pytest.warns(UserWarning, match='000.mp4'):
        after = frames_by_source(_extract(raw, tmp_path / 'f_truncated'))
    assert cut not in after and {s: f for s, f in ref.items() if s != cut} == after
    assert any(r.source == cut and 'cannot decode' in r.reason for r in skipped_rows(tmp_path / 'f_truncated').itertuples())


def _extract(raw, out, **kw):
    extract_frames(raw, out, **{**SMALL, **kw})
    return out


def test_every_drop_is_recorded_and_counted_on_the_terminal(tiny_raw, tmp_path, capsys):
    raw = copy_raw(tiny_raw, tmp_path / 'raw')
    fakes = sorted(os.listdir(raw / FAKES.format('FaceSwap')))
    (raw / FAKES.format('FaceSwap') / fakes[0]).unlink()                     # a fake deleted, its mask video kept
    (raw / MASKS.format('FaceSwap') / fakes[1]).unlink()                     # a fake without its mask video
    (raw / MASKS.format('FaceSwap') / 'zzz_999.mp4').write_bytes(b'x')       # a mask video of no video
    au = sorted((raw / 'CASIA2' / 'Au').iterdir())[0]
    (raw / 'CASIA2' / 'Au' / 'Au_notes.txt').write_text('not an image')      # not a dataset file: not an item
    gt = sorted((raw / 'CASIA2' / 'CASIA2.0_Groundtruth').iterdir())[0]
    shutil.copy(gt, gt.with_name('Tp_S_zzz00001_zzz00001_00001_gt.png'))   # a mask of no image
    out = tmp_path / 'frames'
    extract_frames(raw, out, **SMALL)
    said = capsys.readouterr().out
    sk = skipped_rows(out)
    by_source = dict(zip(sk.source, sk.reason))
    assert 'split file' in by_source[f"{FAKES.format('FaceSwap')}/{fakes[0]}"]
    assert 'mask video' in by_source[f"{FAKES.format('FaceSwap')}/{fakes[0]}"]
    assert 'without its video' in by_source[f"{MASKS.format('FaceSwap')}/zzz_999.mp4"]
    assert 'without its image' in by_source['CASIA2/CASIA2.0_Groundtruth/Tp_S_zzz00001_zzz00001_00001_gt.png']
    line = next(l for l in said.splitlines() if l.startswith('extract_frames: kept '))
    assert f'skipped {len(sk)}:' in line and 'mask video without its video' in line
    summary = json.loads((out / 'summary.json').read_text())
    assert sum(summary['skipped_by_reason'].values()) == len(sk) and not any('/' in k for k in summary['skipped_by_reason'])

    with pytest.warns(UserWarning, match='without a mask video'):
        build_masks(out, tmp_path / 'masks', raw, progress=False)
    said = capsys.readouterr().out
    msk = skipped_rows(tmp_path / 'masks')
    assert (msk.source == f"{FAKES.format('FaceSwap')}/{fakes[1]}").any()
    line = next(l for l in said.splitlines() if l.startswith('build_masks: kept '))
    assert f'skipped {len(msk)}: {len(msk)} fake video without a mask video' in line
    assert not sk.source.str.contains(au.name).any() and not sk.source.str.contains('Au_notes').any()   # kept; not an item


def test_non_utf8_file_names_are_skipped_with_their_reason(tiny_raw, tmp_path):
    from forgeloc.data.splits import seeded_split
    from forgeloc.pipeline import run_stage
    raw = copy_raw(tiny_raw, tmp_path / 'raw')
    au = sorted((raw / 'CASIA2' / 'Au').iterdir())[0]
    bad_image = os.fsencode(raw / 'CASIA2' / 'Au') + b'/Au_caf\xe9_00997.jpg'
    shutil.copy(au, bad_image)
    real = raw / REAL / '000.mp4'
    shutil.copy(real, os.fsencode(raw / REAL) + b'/0\xe9.mp4')
    assert seeded_split(os.fsdecode(b'Au_caf\xe9_00997'), 0, (8, 1, 1)) in ('train', 'val', 'test')
    out = tmp_path / 'frames'
    man = extract_frames(raw, out, **SMALL)
    sk = skipped_rows(out)
    for name in ('CASIA2/Au/Au_caf\\xe9_00997.jpg', f'{REAL}/0\\xe9.mp4'):
        row = sk[sk.source == name]
        assert len(row) == 1 and 'not valid UTF-8' in row.reason.iloc[0] and name in row.reason.iloc[0]
    assert len(man) > 0 and not man.source.str.contains('\\xe9', regex=False).any()
    build_masks(out, tmp_path / 'masks', raw, progress=False)
    # and through the stage notebooks, as `dvc repro` runs them (the crash was the notebook's output)
    run_stage('extract_frames', tmp_path / 'runs' / 'e.ipynb', raw_dir=str(raw), out_dir=str(tmp_path / 'nb_frames'),
              frames_per_real=2, frames_per_fake=1, workers=1)
    run_stage('build_masks', tmp_path / 'runs' / 'b.ipynb', frames_dir=str(tmp_path / 'nb_frames'), raw_dir=str(raw),
              out_dir=str(tmp_path / 'nb_masks'), workers=1)
    assert (skipped_rows(tmp_path / 'nb_frames').source == 'CASIA2/Au/Au_caf\\xe9_00997.jpg').any()
    # data that lies in a folder whose own name is not UTF-8: only names under the raw-data root count
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b'/caf\xe9'))
    shutil.copytree(tiny_raw, odd / 'raw')
    assert extract_frames(odd / 'raw', odd / 'frames', **SMALL).item.tolist() == man.item.tolist()   # the same frames


def _descendants(pid) -> set:
    "Process ids below `pid` (from /proc)."
    parent = {}
    for d in Path('/proc').iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / 'stat').read_text().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p}
        found |= kids; todo += list(kids)
    return found


def _process_gone(pid) -> bool:
    "No process `pid`, or only its zombie (its parent has not read its status yet)."
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] == 'Z'
    except (OSError, IndexError):
        return True


@pytest.mark.skipif(not Path('/proc/self/stat').exists(), reason='reads the process tree from /proc')
def test_a_killed_extraction_leaves_no_temporary_folder_and_no_worker(tiny_raw, tmp_path, capsys):
    out = tmp_path / 'frames'
    script = (f"from forgeloc.data.extract_frames import extract_frames\n"
              f"if __name__ == '__main__':\n"
              f"    extract_frames({str(tiny_raw)!r}, {str(out)!r}, policy='every_k', every_k=1, workers=2, progress=False)\n")
    (tmp_path / 'run.py').write_text(script)
    env = {**os.environ, 'PYTHONPATH': str(ROOT), 'FORGELOC_ROOT': str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(tmp_path / 'run.py')], env=env)
    workers, t0 = set(), time.time()
    while time.time() - t0 < 120:          # kill it once the workers write frames into the temporary folder
        tmps = list(tmp_path.glob('.frames.*.tmp'))
        workers |= _descendants(proc.pid)
        if tmps and len(list(tmps[0].rglob('*.png'))) >= 5 and len(workers) >= 3:
            break
        assert proc.poll() is None, 'the extraction ended before it could be killed'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert list(tmp_path.glob('.frames.*.tmp'))                                  # what a kill leaves ...
    t0 = time.time()
    while time.time() - t0 < 10 and not all(_process_gone(p) for p in workers):
        time.sleep(0.1)
    assert [p for p in workers if not _process_gone(p)] == [], 'worker processes outlived the killed stage'
    extract_frames(tiny_raw, out, **SMALL)                                       # ... the next run removes, and says so
    assert 'the temporary folder of an interrupted run' in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ['frames', 'run.py']


def _faulty_copy(tiny_raw, dest) -> Path:
    "A copy of the tiny dataset with one of each fault: undecodable video, short mask video, no mask, bad name, no GT."
    from forgeloc.data.io import read_frames, video_info, write_video
    import numpy as np
    raw = copy_raw(tiny_raw, dest)
    (raw / REAL / '001.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42 not a video')
    m = sorted((raw / MASKS.format('Face2Face')).iterdir())[0]
    write_video(m, np.stack(list(read_frames(m, range(video_info(m)['n_frames'] - 2)).values())))
    sorted((raw / MASKS.format('Deepfakes')).iterdir())[0].unlink()
    shutil.copy(sorted((raw / 'CASIA2' / 'Au').iterdir())[0], os.fsencode(raw / 'CASIA2' / 'Au') + b'/Au_caf\xe9_00997.jpg')
    sorted((raw / 'CASIA2' / 'CASIA2.0_Groundtruth').iterdir())[0].unlink()
    return raw


def test_outputs_do_not_depend_on_where_the_data_lies(tiny_raw, tmp_path):
    import warnings
    outs = []
    for where in ('a', 'deeper/checkout b'):
        raw = _faulty_copy(tiny_raw, tmp_path / where / 'data' / 'raw')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            extract_frames(raw, raw.parent / 'frames', **SMALL)
            build_masks(raw.parent / 'frames', raw.parent / 'masks', raw, labels='binary,fakeness', progress=False)
        outs.append(raw.parent)
    for stage in ('frames', 'masks'):
        a, b = (sorted(p.relative_to(o / stage) for p in (o / stage).rglob('*') if p.is_file()) for o in outs)
        assert a == b
        differ = [p for p in a if (outs[0] / stage / p).read_bytes() != (outs[1] / stage / p).read_bytes()]
        assert differ == [], f'{stage}: {differ}'
        for name in ('manifest.csv', 'skipped.csv', 'summary.json'):
            text = (outs[0] / stage / name).read_text()
            assert str(tmp_path) not in text, f'{stage}/{name} names an absolute path'
        reasons = json.loads((outs[0] / stage / 'summary.json').read_text())['skipped_by_reason']
        assert reasons and not any("'" in k or '/' in k for k in reasons), reasons
    assert len(skipped_rows(outs[0] / 'frames')) >= 3 and len(skipped_rows(outs[0] / 'masks')) >= 2


def test_data_stage_summaries_reach_the_dvc_repro_output(tiny_raw, tmp_path):
    "The one-line summaries of both data stages appear in what `dvc repro` prints (the stage notebooks forward them)."
    repo = tmp_path / 'repo'
    for rel in ('dvc.yaml', 'params.yaml', 'settings.ini', 'nbs/pipeline/extract_frames.ipynb', 'nbs/pipeline/build_masks.ipynb'):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    shutil.copytree(ROOT / 'forgeloc', repo / 'forgeloc', ignore=shutil.ignore_patterns('__pycache__'))
    raw = copy_raw(tiny_raw, repo / 'data' / 'raw')
    (raw / REAL / '001.mp4').write_bytes(b'not a video')
    params = yaml.safe_load((repo / 'params.yaml').read_text())
    params['extract_frames'].update(frames_per_real=2, frames_per_fake=1, workers=1)
    params['build_masks'].update(workers=1)
    (repo / 'params.yaml').write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, 'PATH': f"{Path(sys.executable).parent}:{os.environ['PATH']}", 'PYTHONPATH': str(repo),
           'FORGELOC_ROOT': str(repo)}
    subprocess.run(['dvc', 'init', '-q', '--no-scm'], cwd=repo, env=env, check=True)
    r = subprocess.run(['dvc', 'repro', 'build_masks'], cwd=repo, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    said = r.stdout + r.stderr
    assert re.search(r'extract_frames: kept \d+ frames .*; skipped \d+: .*\b1 cannot decode video …', said), said[-3000:]
    assert 'build_masks: kept ' in said, said[-3000:]
