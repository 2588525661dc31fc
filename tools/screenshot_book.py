"""Screenshots of the built book in headless Chromium: `make docs-screens` (python tools/screenshot_book.py [PAGE ...]).

Writes _book/screens/<page>.png for each page (default: the front page and the UPerNet lesson) from _docs/.
Needs Debian's `chromium` (apt-get install chromium) or `chromium-headless-shell`; nothing is fetched.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE, OUT = ROOT / '_docs', ROOT / '_book' / 'screens'
PAGES = ['index', '23_models.upernet']


def browser() -> str:
    "The first Chromium found on PATH."
    for name in ('chromium', 'chromium-headless-shell', 'chromium-browser', 'google-chrome'):
        if exe := shutil.which(name): return exe
    sys.exit('no Chromium on PATH: apt-get install chromium')


def shoot(page: str, width: int = 1400, height: int = 2400, exe: str | None = None) -> Path:
    "Render _docs/`page`.html at `width`×`height` CSS pixels into _book/screens/`page`.png."
    html = SITE / f'{page}.html'
    if not html.exists(): sys.exit(f'{html.relative_to(ROOT)} is missing: run `make docs` first')
    OUT.mkdir(parents=True, exist_ok=True)
    png = OUT / f'{page}.png'
    cmd = [exe or browser(), '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
           '--virtual-time-budget=5000', f'--window-size={width},{height}', f'--screenshot={png}', html.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return png


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('pages', nargs='*', default=PAGES)
    ap.add_argument('--width', type=int, default=1400)
    ap.add_argument('--height', type=int, default=2400)
    a = ap.parse_args(argv)
    exe = browser()
    for p in a.pages: print(shoot(p, a.width, a.height, exe).relative_to(ROOT))


if __name__ == '__main__':
    main()
