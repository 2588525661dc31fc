"Notebooks are committed clean, and the package is exactly what nbdev_export makes of them."
import filecmp
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)


def test_notebooks_carry_no_outputs():
    assert len(NOTEBOOKS) >= 10
    for p in NOTEBOOKS:
        nb = json.loads(p.read_text())
        for c in nb['cells']:
            if c['cell_type'] == 'code':
                assert not c.get('outputs'), f'{p.relative_to(ROOT)} has outputs: run nbdev_clean'
                assert c.get('execution_count') is None, f'{p.relative_to(ROOT)} has execution counts: run nbdev_clean'


def test_pipeline_notebooks_keep_parameters_tag():
    for p in (ROOT / 'nbs' / 'pipeline').glob('*.ipynb'):
        nb = json.loads(p.read_text())
        assert any('parameters' in c.get('metadata', {}).get('tags', []) for c in nb['cells']), p.name


def test_settings_keep_tags_for_papermill():
    assert 'allowed_cell_metadata_keys = tags' in (ROOT / 'settings.ini').read_text()


def test_export_leaves_package_unchanged(tmp_path):
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs')
    shutil.copy(ROOT / 'settings.ini', tmp_path)
    exe = Path(sys.executable).with_name('nbdev_export')
    subprocess.run([str(exe)], cwd=tmp_path, check=True, capture_output=True)
    ours = sorted(p.relative_to(ROOT / 'forgeloc') for p in (ROOT / 'forgeloc').rglob('*.py'))
    theirs = sorted(p.relative_to(tmp_path / 'forgeloc') for p in (tmp_path / 'forgeloc').rglob('*.py'))
    assert ours == theirs, 'forgeloc/ and the notebooks list different modules: run nbdev_export'
    for rel in ours:
        assert filecmp.cmp(ROOT / 'forgeloc' / rel, tmp_path / 'forgeloc' / rel, shallow=False), \
            f'forgeloc/{rel} differs from what nbdev_export makes of nbs/: run nbdev_export (never edit forgeloc/ by hand)'
