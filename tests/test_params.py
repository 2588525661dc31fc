"Bad values in params.yaml are found at once, by key, before DVC can remove any output; the stage notebooks' defaults are params.yaml's."
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from forgeloc.core import ForgelocError, load_params, resolve
from forgeloc.params import CHECK_OUTPUT, check_params, params_problems, with_values
from forgeloc.pipeline import NOTEBOOK_OF, NOTEBOOK_STAGES, STAGES, dvc_stage_params, stage_notebook

from test_config import DVC, parameters_cell, stage_params, stage_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def good(tmp_path_factory):
    "The repository's params.yaml, with base.raw_dir pointed at a stand-in raw folder (an empty FF++ tree) when data/raw is absent."
    params = load_params(ROOT / 'params.yaml')
    if resolve(params['base']['raw_dir']).is_dir():
        return params
    raw = tmp_path_factory.mktemp('raw')
    (raw / 'FaceForensics++').mkdir()
    return with_values(params, {'base.raw_dir': str(raw)})


def problems(good, **changes):
    return params_problems(with_values(good, {k.replace('__', '.'): v for k, v in changes.items()}))


def test_the_repository_params_pass(good):
    assert params_problems(good) == []
    real = load_params(ROOT / 'params.yaml')
    found = params_problems(real)
    assert found == [] or (len(found) == 1 and '`base.raw_dir`' in found[0]), found   # a checkout without data/raw yet


def test_threshold_out_of_range_names_the_key(good):
    (msg,) = problems(good, evaluate__threshold=1.5)
    assert '`evaluate.threshold`' in msg and '[0, 1]' in msg and '1.5' in msg


def test_lr_above_the_bound_names_the_key(good):
    from forgeloc.train import LR_MAX
    for lr in (1e6, '1e6', 0, -1e-3):                   # '1e6': YAML 1.1 keeps it text; papermill reads it as a number
        (msg,) = problems(good, train__models__fcn__lr=lr)
        assert 'train.models.fcn' in msg and '`train.lr`' in msg, msg
    (msg,) = problems(good, train__models_after__detect_locate__lr=1e6)
    assert 'train.models_after.detect_locate' in msg and f'(0, {LR_MAX:g}]' in msg


def test_label_typo_names_the_allowed_kinds(good):
    from forgeloc.data.build_masks import BUILT_LABELS
    (msg,) = problems(good, build_masks__labels='binary,nosie')
    assert '`build_masks.labels`' in msg and "'nosie'" in msg and ', '.join(BUILT_LABELS) in msg


def test_policy_and_crop_typos_name_the_key_and_choices(good):
    from forgeloc.data.extract_frames import CROPS, POLICIES
    found = problems(good, extract_frames__policy='fixd', extract_frames__crop='boxx')
    assert found == [f"unknown extract_frames.policy 'fixd'; choose one of {', '.join(POLICIES)}",
                     f"unknown extract_frames.crop 'boxx'; choose one of {', '.join(CROPS)}"]


def test_missing_raw_dir_names_base_raw_dir(good, tmp_path):
    (msg,) = problems(good, base__raw_dir=str(tmp_path / 'raw_missing'))
    assert msg.startswith('`base.raw_dir`') and 'raw_missing does not exist' in msg


def test_every_problem_at_once_in_one_error(good):
    bad = with_values(good, {'evaluate.threshold': 1.5, 'extract_frames.policy': 'fixd', 'train.models.fcn.epochs': 0,
                             'figures.dpi': 'high'})
    bad['evaluate']['n_exampels'] = bad['evaluate'].pop('n_examples')
    with pytest.raises(ForgelocError) as e:
        check_params(bad)
    text = str(e.value)
    assert '6 problem(s)' in text, text        # the misspelt key counts twice: unknown, and its real name missing
    for key in ('evaluate.threshold', 'extract_frames.policy', 'train.epochs', 'figures.dpi', 'evaluate.n_exampels',
                'did you mean `evaluate.n_examples`', '`evaluate.n_examples` is missing'):
        assert key in text, key


def test_pipeline_notebook_defaults_equal_params_yaml():
    """Every value dvc.yaml passes a stage is its notebook's default (values, not only names), so a notebook opened in Jupyter
    runs what `dvc repro` runs. A foreach stage is compared for the first model of its group (the notebooks' example
    model); train_after/evaluate_after share those notebooks, so only their values that do not depend on the model."""
    for stage in NOTEBOOK_STAGES:
        defaults, passed = parameters_cell(stage_notebook(stage)), stage_params(stage)
        per_model = set(re.findall(r"-p (\w+) '?[^\s']*\$\{(?:key|item)", stage_spec(stage)['cmd'])) if stage in NOTEBOOK_OF else set()
        for name, value in passed.items():
            if name in per_model:
                continue
            d = defaults[name]
            assert d == value and isinstance(d, bool) == isinstance(value, bool), \
                f'{stage_notebook(stage).name}: {name} = {d!r}, but dvc.yaml passes {value!r} (params.yaml)'


def test_the_resolved_training_configuration_is_logged_with_dvclive(tmp_path):
    "open_live logs every value of the resolved configuration (lr, epochs, size, ...) as DVCLive params."
    from forgeloc.launch import flat_config, open_live
    from forgeloc.models.registry import resolve_config
    cfg = resolve_config('fcn', 'cpu', {'lr': 0.002})
    live = open_live(tmp_path / 'live', cfg)
    from ruamel.yaml import YAML                                    # YAML 1.2, as DVC reads it: 1e-05 is a number
    logged = YAML(typ='safe').load((tmp_path / 'live' / 'params.yaml').read_text())
    live.end()
    assert logged == flat_config(cfg)
    assert logged['lr'] == 0.002 and {'epochs', 'size', 'batch_size', 'preset', 'model'} <= set(logged)


def _dvc_copy(repo: Path) -> dict:
    "The pipeline's files copied into `repo`, a DVC repository without git (as tests/test_data_faults.py builds one)."
    for rel in ('dvc.yaml', 'params.yaml', 'settings.ini', *(f'nbs/pipeline/{p.name}' for p in (ROOT / 'nbs/pipeline').glob('*.ipynb'))):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    shutil.copytree(ROOT / 'forgeloc', repo / 'forgeloc', ignore=shutil.ignore_patterns('__pycache__'))
    env = {**os.environ, 'PATH': f"{Path(sys.executable).parent}:{os.environ['PATH']}", 'PYTHONPATH': str(repo),
           'FORGELOC_ROOT': str(repo), 'PYTHONDONTWRITEBYTECODE': '1'}
    subprocess.run(['dvc', 'init', '-q', '--no-scm'], cwd=repo, env=env, check=True)
    return env


def test_a_typo_in_the_data_stages_params_keeps_their_outputs(tmp_path):
    """Through DVC: with typos in both data stages' params (and base.raw_dir), `dvc repro` fails at check_params and the
    previous data/frames and data/masks stay; fixed, the check passes and re-runs nothing. Without the check
    (`dvc repro -s`), DVC removes data/frames before the stage's own check fails: what the check prevents. The outputs
    are small stand-ins committed with `dvc commit` (the real stages' outputs cost minutes; DVC treats them alike)."""
    repo = tmp_path / 'repo'
    env = _dvc_copy(repo)
    dvc = lambda *args: subprocess.run(['dvc', *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    (repo / 'data/raw/FaceForensics++').mkdir(parents=True)
    (repo / 'data/raw/FaceForensics++/README').write_text('stand-in raw tree\n')
    outs = {'data/frames/manifest.csv': 'item\nframe_a\n', 'runs/extract_frames.ipynb': '{}\n',
            'data/masks/manifest.csv': 'item\nmask_a\n', 'runs/build_masks.ipynb': '{}\n'}
    for rel, text in outs.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    r = dvc('repro', 'check_params')
    assert r.returncode == 0 and (repo / CHECK_OUTPUT).exists(), r.stdout + r.stderr
    r = dvc('commit', '-f', 'extract_frames', 'build_masks')
    assert r.returncode == 0, r.stdout + r.stderr
    original = (repo / 'params.yaml').read_text()
    typos = with_values(yaml.safe_load(original), {'extract_frames.policy': 'fixd', 'extract_frames.crop': 'boxx',
                                                   'build_masks.labels': 'binary,nosie', 'base.raw_dir': 'data/raw_missing'})
    (repo / 'params.yaml').write_text(yaml.safe_dump(typos, sort_keys=False))
    r = dvc('repro', 'build_masks')
    said = r.stdout + r.stderr
    assert r.returncode != 0 and "failed to reproduce 'check_params'" in said, said[-3000:]
    for msg in ("extract_frames.policy 'fixd'", "extract_frames.crop 'boxx'", "`build_masks.labels` 'nosie'", '`base.raw_dir`'):
        assert msg in said, (msg, said[-3000:])
    assert {rel: (repo / rel).read_text() for rel in outs} == outs          # the last good outputs are all there
    (repo / 'params.yaml').write_text(original)
    r = dvc('repro', 'build_masks')
    said = r.stdout + r.stderr
    assert r.returncode == 0 and "'extract_frames' didn't change" in said and "'build_masks' didn't change" in said, said[-3000:]
    assert {rel: (repo / rel).read_text() for rel in outs} == outs
    (repo / 'params.yaml').write_text(yaml.safe_dump(with_values(yaml.safe_load(original), {'extract_frames.policy': 'fixd'}),
                                                     sort_keys=False))
    r = dvc('repro', '-s', 'extract_frames')                                # the stage alone, past the check
    assert r.returncode != 0 and not (repo / 'data/frames').exists(), (r.stdout + r.stderr)[-3000:]
