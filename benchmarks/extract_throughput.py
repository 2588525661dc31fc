"""Benchmark: frame extraction + face crop + mask throughput, as a ratio to decode-only throughput.

For the same frames of the same videos it times
  * decode-only: PyAV decoding of exactly the frames the policy samples (the floor any extractor pays);
  * extract: the extract_frames stage (decode, Haar detection, crop, PNG write, manifest) followed by
    build_masks (mask-video decode, binarize, crop, PNG write),
for dense sampling (every frame) and sparse sampling (7 per video, as Zhang et al.), and for sparse
sampling also decode-only without seeking (decode from the start up to the last wanted frame).
Each timing is the median of --repeats runs; ratios are taken within one run of this script.

    .venv/bin/python benchmarks/extract_throughput.py [--videos 4] [--frames 300] [--repeats 3]
"""
import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from forgeloc.core import atomic_write, resolve
from forgeloc.data.build_masks import build_masks
from forgeloc.data.sample import build_sample_dataset
from forgeloc.data.extract_frames import extract_frames
from forgeloc.data.ffpp import list_ffpp_videos
from forgeloc.data.io import read_frames


def decode_all(paths):
    n = 0
    for p in paths:
        with av.open(str(p)) as c:
            for f in c.decode(video=0):
                f.to_ndarray(format='rgb24'); n += 1
    return n


def decode_sampled(videos, indices, seek=True):
    "Decode exactly the frames in `indices` (video path -> frame list) of each video and of its mask video."
    n = 0
    for v in videos:
        if str(v['path']) not in indices:
            continue
        for p in [v['path']] + ([v['mask_path']] if v['mask_path'] else []):
            n += len(read_frames(p, indices[str(v['path'])], seek=seek))
    return n


def median_time(fn, repeats):
    ts = []
    for _ in range(repeats):
        t = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--videos', type=int, default=4, help='real videos (each gets 3 fakes with mask videos)')
    ap.add_argument('--frames', type=int, default=300, help='frames per video (FF++ videos have ~300-700)')
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--out', default='benchmarks/results/extract_throughput.json')
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    try:
        t0 = time.perf_counter()
        raw = build_sample_dataset(tmp / 'raw', seed=1, n_real_videos=a.videos, n_frames=a.frames, video_size=a.size,
                                   n_images=2, image_size=64, progress=False)
        shutil.rmtree(raw / 'CASIA2')
        print(f'built {a.videos * 4} videos of {a.frames} frames in {time.perf_counter() - t0:.0f} s')
        videos = list_ffpp_videos(raw / 'FaceForensics++')
        results = {'videos': len(videos), 'frames_per_video': a.frames, 'size': a.size, 'repeats': a.repeats}
        for name, kw in (('dense', dict(policy='every_k', every_k=1)),
                         ('sparse', dict(policy='fixed', frames_per_real=7, frames_per_fake=7))):
            run_stage = lambda: extract_frames(raw, tmp / 'frames', progress=False, **kw)
            man = run_stage()                      # the frames the policy samples: decode exactly these
            idx = {str(raw / src): sorted(g.frame) for src, g in man.groupby('source')}
            n_frames = len(man)
            t_dec, n_dec = median_time(lambda: decode_sampled(videos, idx), a.repeats)
            def run():
                run_stage()
                return len(build_masks(tmp / 'frames', tmp / 'masks', raw, progress=False))
            t_ext, n_ext = median_time(run, a.repeats)
            row = {'frames': n_frames, 'decoded_frames_incl_masks': n_dec, 'decode_only_s': round(t_dec, 3),
                   'extract_and_masks_s': round(t_ext, 3), 'extracted': n_ext,
                   'decode_only_fps': round(n_frames / t_dec, 1), 'extract_fps': round(n_ext / t_ext, 1),
                   'ratio_extract_to_decode': round(t_ext / t_dec, 2)}
            if name == 'sparse':
                t_seq, _ = median_time(lambda: decode_sampled(videos, idx, seek=False), a.repeats)
                row.update({'decode_no_seek_s': round(t_seq, 3), 'seek_speedup': round(t_seq / t_dec, 2)})
            if name == 'dense':
                t_all, n_all = median_time(lambda: decode_all([v['path'] for v in videos] + [v['mask_path'] for v in videos if v['mask_path']]), a.repeats)
                row.update({'decode_whole_videos_s': round(t_all, 3)})
            results[name] = row
            print(name, json.dumps(row))
        out = resolve(a.out)
        with atomic_write(out) as f:
            json.dump(results, f, indent=2)
        print(f'written {out}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
