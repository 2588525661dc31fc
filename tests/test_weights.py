"Importing the authors' checkpoints (issue 18): full-size files synthesized from each format's key list import strictly and run; file-level errors name the file and the key."
import hashlib
import re

import pytest
import torch

from forgeloc.core import ForgelocError
from forgeloc.models.registry import build_model
from forgeloc.models.weights import (FORMATS, authors_layout, format_config, import_weights, input_normalization,
                                     random_authors_state, to_authors, to_forgeloc)
from forgeloc.checkpoints import load_checkpoint, read_checkpoint


@pytest.mark.parametrize('fmt', list(FORMATS))
def test_full_size_random_file_imports_and_runs(fmt):
    "Random values in the authors' key list at the papers' size fill the forgeloc network strictly, and it runs on a small input."
    torch.manual_seed(0)
    state = random_authors_state(fmt, seed=1)
    net = build_model(format_config(fmt)).eval()
    sd, rep = to_forgeloc(state, fmt, net.state_dict())
    assert rep['used'] + sum(rep['dropped'].values()) == len(state) == len(authors_layout(fmt))
    net.load_state_dict(sd, strict=True)
    back = to_authors(net.state_dict(), fmt)         # the way back gives the file's tensors, except what the rules drop
    kept = {k for k in state if not any(re.search(p, k.removeprefix('module.')) for p, _ in FORMATS[fmt].drops)}
    assert set(back) == kept
    assert all(torch.equal(back[k].float(), state[k].float()) for k in kept)
    size = 299 if fmt == 'kong' else 64            # Kong's classifier (no padding) needs about 230 px or more
    with torch.no_grad():                            # (a forward pass re-projects the BayarConv weights, as the authors')
        out = net(torch.rand(1, 3, size, size))
    assert all(torch.isfinite(v).all() for v in out.values())


def test_official_mvss_file_end_to_end(tmp_path):
    "An official MVSS-Net file (its keys cannot tell: the format is given) becomes a checkpoint that records BGR + ImageNet statistics and builds input_order='bgr'."
    src = tmp_path / 'mvssnet_casia.pt'
    torch.save(random_authors_state('mvss_official', seed=2), src)
    with pytest.raises(ForgelocError, match="give the format: 'mvss_official'"):
        import_weights(src, out_dir=tmp_path / 'x')
    path = import_weights(src, 'mvss_official', out_dir=tmp_path / 'mvss_casia')
    ck = read_checkpoint(path)
    imp, cfg = ck['imported'], ck['cfg']
    assert (imp['source_file'], imp['format'], imp['sha256']) == ('mvssnet_casia.pt', 'mvss_official', hashlib.sha256(src.read_bytes()).hexdigest())
    assert imp['authors_input']['channel_order'] == 'BGR' and imp['authors_input']['mean'] == (0.485, 0.456, 0.406)
    assert imp['input']['network_reverses_channels'] and cfg['input_order'] == 'bgr'
    assert input_normalization(cfg) == ((0.406, 0.456, 0.485), (0.225, 0.224, 0.229))
    net, _ = load_checkpoint(path)
    assert net.input_order == 'bgr'


@pytest.fixture(scope='module')
def kong_file(tmp_path_factory):
    d = tmp_path_factory.mktemp('kong')
    state = random_authors_state('kong', seed=4)
    torch.save(state, d / 'best.pth')
    return d, state


@pytest.mark.parametrize('how', ['renamed', 'removed', 'misshaped'])
def test_broken_file_names_file_and_key(kong_file, how):
    d, state = kong_file
    key = 'module.block7.rep.4.pointwise.weight'
    s = dict(state)
    if how == 'renamed':
        s['module.block7.rep.4.pointwise.weights'] = s.pop(key)
    elif how == 'removed':
        del s[key]
    else:
        s[key] = torch.zeros(729, 728, 1, 1)
    torch.save(s, d / f'{how}.pth')
    with pytest.raises(ForgelocError) as e:
        import_weights(d / f'{how}.pth', out_dir=d / 'out')
    msg = str(e.value)
    assert f'{how}.pth' in msg and 'block7.rep.4.pointwise.weight' in msg
    assert {'renamed': '1 missing, 1 unexpected', 'removed': '1 missing, 0 unexpected', 'misshaped': '1 mis-shaped'}[how] in msg
    assert not (d / 'out' / 'best.pt').exists()


def test_kong_file_detected_and_equal_to_direct_conversion(kong_file):
    d, state = kong_file
    net, ck = load_checkpoint(import_weights(d / 'best.pth', out_dir=d / 'kong'))
    assert ck['imported']['format'] == 'kong' and ck['cfg']['attention'] == 'logit'
    direct = build_model(format_config('kong')).eval()
    direct.load_state_dict(to_forgeloc(state, 'kong', direct.state_dict())[0])
    x = torch.rand(1, 3, 299, 299) * 2 - 1
    with torch.no_grad():
        a, b = net(x), direct(x)
    assert all(torch.equal(a[k], b[k]) for k in a)
