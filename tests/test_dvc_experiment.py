"`dvc exp run -S ...` in a clone of the repository trains and evaluates every model of params.yaml at tiny sizes, with two seeds."
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sh(args, cwd, **kw):
    env = {**os.environ, 'PATH': f"{BIN}:{os.environ['PATH']}", 'FORGELOC_ROOT': str(cwd)}
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_dvc_exp_run_trains_every_model(tmp_path):
    if subprocess.run(['git', 'status', '--porcelain', '--', 'nbs', 'forgeloc', 'dvc.yaml', 'params.yaml'], cwd=ROOT,
                      capture_output=True, text=True).stdout.strip():
        pytest.skip('uncommitted changes to the pipeline: the clone would not test them (CI tests a clean clone)')
    repo = tmp_path / 'repo'
    sh(['git', 'clone', '-q', '--no-hardlinks', str(ROOT), str(repo)], tmp_path)
    sh(['git', 'config', 'user.email', 'ci@example.org'], repo); sh(['git', 'config', 'user.name', 'ci'], repo)
    from forgeloc.data.sample import build_sample_dataset
    build_sample_dataset(repo / 'data' / 'raw', seed=3, n_real_videos=6, n_frames=8, video_size=128, n_images=10,
                         image_size=64, progress=False)
    sh(['dvc', 'commit', '-q', '-f', 'data.dvc'], repo)
    train = yaml.safe_load((repo / 'params.yaml').read_text())['train']
    groups = {g: list(train.get(g) or {}) for g in ('models', 'models_after')}     # models_after: detect_locate's step 2
    models = groups['models'] + groups['models_after']
    sets = ['-S', 'extract_frames.frames_per_real=2', '-S', 'extract_frames.frames_per_fake=1', '-S', 'evaluate.n_examples=2',
            '-S', 'train.extra_seeds=2027']                                  # one extra seed: the seeds path, at half the cost
    for g, ms in groups.items():
        for m in ms:
            sets += ['-S', f'++train.{g}.{m}.epochs=1', '-S', f'++train.{g}.{m}.size=64', '-S', f'++train.{g}.{m}.batch_size=8']
    sh(['dvc', 'exp', 'run', '-q', *sets], repo, timeout=1800)
    compare = json.loads((repo / 'metrics' / 'compare.json').read_text())
    assert set(compare) == set(models)
    for m in models:
        assert 0 <= compare[m]['image_auc'] <= 1 and compare[m]['checkpoint_epoch'] == 1
        assert (repo / 'models' / m / 'best.pt').exists() and (repo / 'figures' / 'predictions' / f'{m}.png').exists()
        assert (repo / 'models' / m / 'seeds' / '2027' / 'best.pt').exists() and compare[m]['n_seeds'] == 2
    assert 'not run' in (repo / 'metrics' / 'table3.md').read_text()      # no Table III experiments in the clone: marked, not 0
    shown = json.loads(sh(['dvc', 'exp', 'show', '--json'], repo))
    assert 'metrics/compare.json' in json.dumps(shown)
