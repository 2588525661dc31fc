"""The book (`make docs`): its table of contents names every lesson once, and the built site has a page per lesson,
with a figure in every model lesson. The site checks skip when _docs/ is not built (`make docs-check` builds it)."""
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
from build_book import read_toc, toc_files, toctree  # noqa: E402

SITE = ROOT / '_docs'
LESSONS = sorted(p.stem for p in (ROOT / 'nbs').glob('*.ipynb'))
MODEL_LESSONS = ['21_models.fcn', '23_models.upernet', '24_models.mvss', '25_models.fakelocator', '26_models.detect_locate']
built = pytest.mark.skipif(not (SITE / 'index.html').exists(), reason='the book is not built: make docs')


def test_toc_names_every_lesson_once():
    names = toc_files(read_toc())
    assert len(names) == len(set(names)), 'toc.yml names a notebook twice'
    assert sorted(names) == LESSONS, f'toc.yml and nbs/ differ: {sorted(set(LESSONS) ^ set(names))}'


def test_toc_follows_the_reading_order():
    captions = [p['caption'] for p in read_toc()['parts']]
    order = ['Data', 'Models', 'Losses', 'Metrics', 'Training', 'Evaluation', 'Figures', 'Explorer']
    assert [c for c in captions if c in order] == order
    tree = toctree(read_toc())
    assert tree.count('```{toctree}') == len(captions) and 'Two-stream UPerNet (Zhang et al.) <23_models.upernet>' in tree


def test_front_page_links_every_lesson_and_embeds_a_committed_figure():
    src = ''.join(''.join(c['source']) for c in json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells'])
    for name in LESSONS:
        if name != 'index': assert f'({name}.ipynb)' in src, name
    for img in re.findall(r'!\[[^\]]*\]\(([^)]+)\)', src):
        assert (ROOT / 'nbs' / img).resolve().is_file(), img
    assert 'make repro' in src and 'make test' in src


@built
def test_site_has_a_page_per_lesson():
    missing = [n for n in LESSONS if not (SITE / f'{n}.html').is_file()]
    assert not missing, f'no page for {missing}'
    index = (SITE / 'index.html').read_text()
    assert '<img' in index and 'Reading order' in index


@built
@pytest.mark.parametrize('name', MODEL_LESSONS)
def test_model_lesson_shows_a_figure(name):
    assert '<img' in (SITE / f'{name}.html').read_text(), f'{name}: the rendered lesson has no figure'


@built
def test_pages_hold_no_traceback():
    bad = [n for n in LESSONS if 'output traceback' in (SITE / f'{n}.html').read_text()]
    assert not bad, f'a cell raised in {bad}'
