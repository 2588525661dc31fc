"Shared fixtures: a tiny sample dataset, built once per test session."
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault('FORGELOC_ROOT', str(ROOT))


@pytest.fixture(scope='session')
def tiny_raw(tmp_path_factory) -> Path:
    "A small sample dataset in the FF++ / CASIA layouts (6 real videos -> 3 split pairs, 8 frames, 128 px)."
    from forgeloc.data.sample import build_sample_dataset
    root = tmp_path_factory.mktemp('raw') / 'raw'
    build_sample_dataset(root, seed=3, n_real_videos=6, n_frames=8, video_size=128, n_images=10, image_size=64,
                         progress=False)
    return root
