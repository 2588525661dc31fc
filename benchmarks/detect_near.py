"""Haar detection per 256-px frame (the extraction benchmark's size), CPU time with one OpenCV thread: the detector's
default size range (faces from 15% of the frame up) against the sizes `detect_near` searches (×/÷1.5 of the tracked face,
`forgeloc.data.faces.NEAR_SCALE`); both must find the same box. The README's extraction paragraph quotes it.

    .venv/bin/python benchmarks/detect_near.py [--repeats 50]
"""
import argparse
import time
from pathlib import Path

import cv2
import matplotlib
import matplotlib.pyplot as plt

from forgeloc.data.faces import NEAR_SCALE, FaceDetector


def cpu_ms(fn, n):
    t = time.process_time()
    for _ in range(n):
        out = fn()
    return (time.process_time() - t) / n * 1e3, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--repeats', type=int, default=50)
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    photo = plt.imread(Path(matplotlib.get_data_path()) / 'sample_data' / 'grace_hopper.jpg')
    img = cv2.resize(photo, (256, 256))
    fd = FaceDetector()
    box = fd.detect_all(img)[0]
    side = max(box[2] - box[0], box[3] - box[1])
    full, b1 = cpu_ms(lambda: fd.detect_all(img), a.repeats)
    near, b2 = cpu_ms(lambda: fd.detect_all(img, size_range=(side / NEAR_SCALE, min(side * NEAR_SCALE, 256))), a.repeats)
    print(f'Haar on 256 px: whole size range {full:.1f} ms, near sizes {near:.1f} ms (x{full / near:.1f}); '
          f'same box: {b1[0] == b2[0]}')

if __name__ == '__main__':
    main()
