"dvc.yaml, params.yaml and the pipeline notebooks agree with each other."
import json
import re
import tempfile
from pathlib import Path

import yaml

from forgeloc.params import CHECK_OUTPUT, CHECK_STAGE, WEIGHTS_EXAMPLE
from forgeloc.pipeline import NOTEBOOK_STAGES, STAGES, WEIGHTS_STAGES, dvc_stage_params, stage_notebook

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / 'dvc.yaml').read_text())
PARAMS = yaml.safe_load((ROOT / 'params.yaml').read_text())
WEIGHTS = PARAMS.get('weights') or WEIGHTS_EXAMPLE       # the weights stages are checked on params.yaml's example entry when it has none
EXAMPLE_PARAMS = Path(tempfile.mkdtemp()) / 'params.yaml'
EXAMPLE_PARAMS.write_text(yaml.safe_dump({**PARAMS, 'weights': WEIGHTS}, sort_keys=False))


def stage_params(stage):
    "dvc_stage_params of `stage`; a weights stage's from params.yaml with the example entry when params.yaml has none."
    empty = stage in WEIGHTS_STAGES and not PARAMS.get('weights')
    return dvc_stage_params(stage, params_file=EXAMPLE_PARAMS) if empty else dvc_stage_params(stage)


def stage_spec(stage):
    "A stage's definition (the `do` part of a foreach stage)."
    spec = DVC['stages'][stage]
    return spec.get('do', spec)


def lookup(key):
    if key in ('key', 'item'):                                  # foreach variables
        return {'key': 'fcn', 'item': ''}[key]
    if key.startswith('item.'):                                 # a field of a foreach item: of train.models_after's or weights' items
        groups = [list((PARAMS['train'].get('models_after') or {}).values()), list(WEIGHTS.values())]
        holders = [items for items in groups if items and all(key[5:] in it for it in items)]
        assert holders, f'${{{key}}}: not every item of train.models_after (or of weights) has it'
        return holders[0][0][key[5:]]
    v = PARAMS
    for k in key.split('.'):
        assert isinstance(v, dict) and k in v, f'${{{key}}} used in dvc.yaml is missing from params.yaml'
        v = v[k]
    return v


def test_every_interpolation_exists_in_params():
    keys = re.findall(r'\$\{([^}]+)\}', yaml.safe_dump(DVC))  # comments excluded
    assert len(keys) > 20
    for key in keys:
        lookup(key)


def test_stages_are_chained():
    assert tuple(DVC['stages']) == (CHECK_STAGE, *STAGES)
    fill = lambda text: re.sub(r'\$\{([^}]+)\}', lambda m: str(lookup(m.group(1))), text)
    names = lambda entries: [e if isinstance(e, str) else next(iter(e)) for e in entries]
    outs = {s: [o for kind in ('outs', 'metrics', 'plots') for o in names(stage_spec(s).get(kind, []))] for s in STAGES}   # all three are DVC outputs
    for i, after in enumerate(STAGES[1:], 1):       # a DAG in STAGES order: compare and figures both follow evaluate
        if after == 'import_weights':               # reads only the user's weights/ folder, as extract_frames reads data/raw
            continue
        produced = {fill(o) for before in STAGES[:i] for o in outs[before]}
        needed = {fill(d) for d in stage_spec(after)['deps']} - {CHECK_OUTPUT}      # the params check's output links every stage
        assert any(n == p or p.startswith(n + '/') for n in needed for p in produced), f'{after} depends on no output of the stages before it'
    needed = {fill(d) for d in stage_spec('figures')['deps']}
    assert {'models', 'plots'} <= needed, 'figures reads every checkpoint and the ROC/PR data of evaluate'


def test_every_stage_waits_for_the_params_check():
    "check_params depends on every value of params.yaml, and every other stage on its output: DVC runs it first."
    check = DVC['stages'][CHECK_STAGE]
    assert check['params'] == [{'params.yaml': None}]                 # the whole file
    assert 'forgeloc.params' in check['cmd'] and 'forgeloc/params.py' in check['deps']
    assert check['outs'] == [{CHECK_OUTPUT: {'cache': False}}]
    for stage in STAGES:
        assert stage_spec(stage)['deps'][0] == CHECK_OUTPUT, stage


def test_one_train_and_evaluate_stage_per_model():
    "train and evaluate iterate over params.yaml: train.models, which names registered models and existing presets."
    from forgeloc.models.registry import get_recipe
    for stage in ('train', 'evaluate'):
        assert DVC['stages'][stage]['foreach'] == '${train.models}'
    assert 'train.models.${key}' in stage_spec('train')['params']
    assert {'persist': True} == next(o for o in stage_spec('train')['outs'] if isinstance(o, dict) and 'models/${key}' in o)['models/${key}']
    for name, item in PARAMS['train']['models'].items():
        assert (item or {}).get('preset', 'cpu') in get_recipe(name).presets


def test_models_after_start_from_a_trained_model():
    "train_after/evaluate_after iterate over train.models_after; each depends on the checkpoint it starts from, made by train@<other>."
    from forgeloc.models.registry import get_recipe
    for stage in ('train_after', 'evaluate_after'):
        assert DVC['stages'][stage]['foreach'] == '${train.models_after}'
    assert 'train.models_after.${key}' in stage_spec('train_after')['params']
    assert '${item.init_from}' in stage_spec('train_after')['deps']
    same = lambda s: {k: v for k, v in stage_spec(s).items() if k not in ('params', 'deps')}
    assert same('train_after') == same('train') and same('evaluate_after') == same('evaluate')   # the same commands and outputs
    assert stage_spec('train_after')['deps'] == stage_spec('train')['deps'] + ['${item.init_from}']   # the list written twice agrees
    after = PARAMS['train'].get('models_after') or {}
    assert not set(after) & set(PARAMS['train']['models'])
    for name, item in after.items():
        assert item.get('preset', 'cpu') in get_recipe(name).presets
        src = item['init_from']
        assert any(src == f'models/{k}/best.pt' for k in PARAMS['train']['models']), f'{name}: {src} is no train@ output'


def parameters_cell(nb_path):
    nb = json.loads(Path(nb_path).read_text())
    cells = [c for c in nb['cells'] if 'parameters' in c.get('metadata', {}).get('tags', [])]
    assert len(cells) == 1, f'{nb_path} must have exactly one parameters-tagged cell'
    names = {}
    exec(''.join(cells[0]['source']), {}, names)   # literals only, by the house style
    return names


def test_parameters_cells_match_what_dvc_passes():
    for stage in NOTEBOOK_STAGES:
        nb = stage_notebook(stage)
        names = parameters_cell(nb)
        passed = stage_params(stage)
        assert set(names) == set(passed), f'{nb.name}: notebook {sorted(set(names) - set(passed))} vs dvc.yaml {sorted(set(passed) - set(names))}'
        assert f'nbs/pipeline/{nb.name}' in stage_spec(stage)['deps']


def test_parameter_types_survive_papermill():
    "papermill passes -p values through YAML: each must keep its notebook default's type."
    for stage in NOTEBOOK_STAGES:
        names = parameters_cell(stage_notebook(stage))
        for k, v in stage_params(stage).items():
            assert isinstance(v, type(names[k])) or (isinstance(names[k], float) and isinstance(v, int)), (stage, k, v)


def test_each_stage_reads_only_its_own_and_upstream_groups():
    "Changing a train.* value must re-run train and evaluate only: no earlier stage may read a later group."
    order = {'base': -1, **{s: i for i, s in enumerate(STAGES)}, 'weights': STAGES.index('import_weights'),
             'generalization': STAGES.index('reports')}     # the experiments' group: read by reports and quality_test
    for i, stage in enumerate(STAGES):
        used = {k.split('.')[0] for k in re.findall(r'\$\{([^}]+)\}', yaml.safe_dump(DVC['stages'][stage]))} - {'key', 'item'}
        assert all(order[g] <= i for g in used), f'stage {stage} reads a later group: {sorted(used)}'
    train_users = {s for s in STAGES if '${train.' in yaml.safe_dump(DVC['stages'][s])}
    # evaluate's command: extra_seeds; the robustness stages only iterate over the model keys (`foreach: ${train.models}`)
    assert train_users == {'train', 'evaluate', 'train_after', 'evaluate_after', 'evaluate_weights', 'robustness', 'robustness_after'}
