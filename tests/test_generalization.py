"Generalization (issue 15 part 4): the sample's c40 copies, the training-method filter, the experiments' commands and their tables."
import hashlib
import json
import platform

import pytest

from forgeloc.data.io import video_info

FF = 'FaceForensics++'
# sha1 over (path, sha1) of every file of the conftest sample except the manifest, built before the c40 copies existed
# (x264 is byte-reproducible on x86-64 only: forgeloc.data.io.X264_DETERMINISTIC), and the sha1 of its manifest then
C23_TREE_SHA1 = 'ac8d4b59ff2631ff23bb88cb2f842077ca651aa6'
C23_MANIFEST_SHA1 = '3b27b8b47df6688889459d0e120f3a33e20bc624'


def _c23_videos(raw):
    return sorted(p for p in (raw / FF).rglob('c23/videos/*.mp4'))


def test_every_c23_video_has_a_c40_copy(tiny_raw):
    man = json.loads((tiny_raw / 'sample_manifest.json').read_text())['files']
    c23 = _c23_videos(tiny_raw)
    assert len(c23) == 6 * 4                                  # 6 real videos, a fake per method and target
    for p in c23:
        low = p.parents[2] / 'c40' / 'videos' / p.name
        assert low.is_file(), low
        assert low.read_bytes() != p.read_bytes()
        assert video_info(low)['n_frames'] == video_info(p)['n_frames'] == 8
        assert low.stat().st_size < p.stat().st_size
        rel = low.relative_to(tiny_raw).as_posix()
        assert man[rel]['role'] == 'video' and man[rel]['quality'] == 'c40' and man[rel]['crf'] == 40
        assert man[rel]['frames_of'] == p.relative_to(tiny_raw).as_posix()
    assert len(list(tiny_raw.rglob('c40/videos/*.mp4'))) == len(c23)
    assert not list(tiny_raw.rglob('masks/c40')), 'masks are shared by every quality'


@pytest.mark.skipif(platform.machine().lower() not in ('x86_64', 'amd64'), reason='x264 bytes are reproducible on x86-64 only')
def test_c23_files_and_manifest_entries_unchanged(tiny_raw):
    h = hashlib.sha1()
    for p in sorted(p for p in tiny_raw.rglob('*') if p.is_file() and p.name != 'sample_manifest.json' and '/c40/' not in p.as_posix()):
        h.update(p.relative_to(tiny_raw).as_posix().encode()); h.update(hashlib.sha1(p.read_bytes()).digest())
    assert h.hexdigest() == C23_TREE_SHA1
    man = json.loads((tiny_raw / 'sample_manifest.json').read_text())
    man['files'] = {k: v for k, v in man['files'].items() if '/c40/' not in k}
    assert hashlib.sha1((json.dumps(man, indent=1) + '\n').encode()).hexdigest() == C23_MANIFEST_SHA1
