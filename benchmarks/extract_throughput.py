"""Benchmark: frame extraction + face crop + mask throughput, as a ratio to decode-only throughput.

For the same frames of the same videos it times
  * decode-only: PyAV decoding, in this one process, of exactly the frames the policy samples and of the
    same frames of the mask videos (the floor any extractor pays);
  * extract: the extract_frames stage (decode, face tracking, crop, PNG write, manifest) followed by
    build_masks (mask-video decode, crop, binarize, PNG write), with `--workers` processes, under two settings:
    exact (the detector on every frame, whole frame) and fast (the detector every `--detect-every`-th frame, boxes
    interpolated between, on a copy of shorter side <= `--detect-size` px, 0 = full size, searching first near the
    tracked face, `--detect-near`),
for dense sampling (every frame) and sparse sampling (7 per video, as Zhang et al.), and for sparse
sampling also decode-only without seeking (decode from the start up to the last wanted frame).
Each timing is the median of --repeats runs; ratios are taken within one run of this script.
It also checks that the fast settings give the exact settings' crops within a tolerance: the same frames
kept, and per frame the IoU of the crop boxes and of the fake frames' masks.

    .venv/bin/python benchmarks/extract_throughput.py [--videos 4] [--frames 300] [--repeats 3] [--workers 0]
"""
import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from forgeloc.core import atomic_write, resolve
from forgeloc.data.build_masks import build_masks
from forgeloc.data.extract_frames import extract_frames
from forgeloc.data.faces import box_iou
from forgeloc.data.ffpp import list_ffpp_videos
from forgeloc.data.io import n_workers, read_frames
from forgeloc.data.sample import build_sample_dataset


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


def agreement(exact_dir: Path, fast_dir: Path, exact, fast) -> dict:
    "How far the fast settings' crops and masks are from the exact ones, frame by frame."
    both = exact.merge(fast, on='item', suffixes=('', '_f'))
    ious = np.array([box_iou(a, b) for a, b in zip(both[['x0', 'y0', 'x1', 'y1']].values, both[['x0_f', 'y0_f', 'x1_f', 'y1_f']].values)])
    m_iou = []
    for it in both[both.label == 1].item:
        a = cv2.imread(str(exact_dir / 'masks' / 'masks' / f'{it}.png'), cv2.IMREAD_GRAYSCALE) > 127
        b = cv2.imread(str(fast_dir / 'masks' / 'masks' / f'{it}.png'), cv2.IMREAD_GRAYSCALE) > 127
        if a.any() or b.any():
            m_iou.append((a & b).sum() / (a | b).sum())
    return {'frames_exact': len(exact), 'frames_fast': len(fast), 'frames_in_both': len(both),
            'box_iou_median': round(float(np.median(ious)), 4), 'box_iou_p05': round(float(np.percentile(ious, 5)), 4),
            'box_iou_min': round(float(ious.min()), 4), 'share_box_iou_ge_0.8': round(float((ious >= 0.8).mean()), 4),
            'mask_iou_median_fakes': round(float(np.median(m_iou)), 4) if m_iou else None,
            'mask_iou_p05_fakes': round(float(np.percentile(m_iou, 5)), 4) if m_iou else None}


TOLERANCE = {'frames_fast_over_exact': 0.99, 'box_iou_median': 0.9, 'share_box_iou_ge_0.8': 0.95}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--videos', type=int, default=4, help='real videos (each gets 3 fakes with mask videos)')
    ap.add_argument('--frames', type=int, default=300, help='frames per video (FF++ videos have ~300-700)')
    ap.add_argument('--size', type=int, default=256)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--workers', type=int, default=0, help='processes of both stages (0: one per CPU core)')
    ap.add_argument('--detect-every', type=int, default=10, help='fast setting: detector every k-th frame')
    ap.add_argument('--detect-size', type=int, default=0, help='fast setting: detect on a copy of this shorter side (0: full size)')
    ap.add_argument('--detect-near', type=float, default=0.5, help='fast setting: search near the tracked face first (0: off)')
    ap.add_argument('--work-dir', default='benchmarks/.work',
                    help="where the stages write (default: inside the repository, where the pipeline writes its outputs)")
    ap.add_argument('--out', default='benchmarks/results/extract_throughput.json')
    a = ap.parse_args(argv)
    work = resolve(a.work_dir); work.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=work))
    try:
        t0 = time.perf_counter()
        raw = build_sample_dataset(tmp / 'raw', seed=1, n_real_videos=a.videos, n_frames=a.frames, video_size=a.size,
                                   n_images=2, image_size=64, progress=False)
        shutil.rmtree(raw / 'CASIA2')
        print(f'built {a.videos * 4} videos of {a.frames} frames in {time.perf_counter() - t0:.0f} s')
        videos = list_ffpp_videos(raw / 'FaceForensics++')
        workers = n_workers(a.workers, len(videos))
        settings = {'exact': dict(detect_every=1, detect_size=0, detect_near=0.0),
                    'fast': dict(detect_every=a.detect_every, detect_size=a.detect_size, detect_near=a.detect_near)}
        results = {'videos': len(videos), 'frames_per_video': a.frames, 'size': a.size, 'repeats': a.repeats, 'work_dir': a.work_dir,
                   'workers': workers, 'cpu_cores': len(os.sched_getaffinity(0)), 'settings': settings, 'tolerance': TOLERANCE}
        for name, kw in (('dense', dict(policy='every_k', every_k=1)),
                         ('sparse', dict(policy='fixed', frames_per_real=7, frames_per_fake=7))):
            out = {}
            def stages(setting):
                d = tmp / f'{name}_{setting}'
                man = extract_frames(raw, d / 'frames', workers=workers, progress=False, **kw, **settings[setting])
                masks = build_masks(d / 'frames', d / 'masks', raw, workers=workers, progress=False)
                return man, masks
            man, _ = stages('exact')                  # the frames the policy samples: decode exactly these
            idx = {str(raw / src): sorted(g.frame) for src, g in man.groupby('source')}
            t_dec, n_dec = median_time(lambda: decode_sampled(videos, idx), a.repeats)
            row = {'frames': len(man), 'decoded_frames_incl_masks': n_dec, 'decode_only_s': round(t_dec, 3),
                   'decode_only_fps': round(len(man) / t_dec, 1)}
            for setting in settings:
                t_ext, (m, k) = median_time(lambda: stages(setting), a.repeats)
                out[setting] = m
                row.update({f'{setting}_s': round(t_ext, 3), f'{setting}_fps': round(len(k) / t_ext, 1),
                            f'{setting}_ratio_to_decode': round(t_ext / t_dec, 2)})
            agree = agreement(tmp / f'{name}_exact', tmp / f'{name}_fast', out['exact'], out['fast'])
            agree['within_tolerance'] = bool(agree['frames_fast'] >= TOLERANCE['frames_fast_over_exact'] * agree['frames_exact']
                                             and agree['box_iou_median'] >= TOLERANCE['box_iou_median']
                                             and agree['share_box_iou_ge_0.8'] >= TOLERANCE['share_box_iou_ge_0.8'])
            row['fast_vs_exact'] = agree
            if name == 'sparse':
                t_seq, _ = median_time(lambda: decode_sampled(videos, idx, seek=False), a.repeats)
                row.update({'decode_no_seek_s': round(t_seq, 3), 'seek_speedup': round(t_seq / t_dec, 2)})
            results[name] = row
            print(name, json.dumps(row))
        out_path = resolve(a.out)
        with atomic_write(out_path) as f:
            json.dump(results, f, indent=2)
        print(f'written {out_path}')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
