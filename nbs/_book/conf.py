# Sphinx configuration of the book (`make docs`). tools/build_book.py executes the lessons into _book/src and runs
#   sphinx-build -c nbs/_book -d _book/doctrees _book/src _book/html     (then moved to _docs/)
# so this folder is the configuration directory and _book/src the source directory. MyST-NB renders the executed
# notebooks as they are (nb_execution_mode = 'off'): the execution is build_book.py's, the same as nbdev_test's.
import configparser
import importlib.util
from pathlib import Path

_cfg = configparser.ConfigParser()
_cfg.read(Path(__file__).resolve().parents[2] / 'settings.ini')
_ini = _cfg['DEFAULT']

project = _ini['title']
author = _ini['author']
copyright = _ini['copyright']
version = release = _ini['version']

extensions = ['myst_nb']
# MathJax 3 from the sphinx-mathjax-offline wheel, copied into _static/mathjax: the pages need no network. (Its own
# extension does the same copy but does not declare itself safe for parallel reading.)
_mathjax = Path(importlib.util.find_spec('sphinx-mathjax-offline').origin).parent / 'static'
mathjax_path = 'mathjax/tex-chtml.js'
root_doc = 'index'
exclude_patterns = ['_build', '**.ipynb_checkpoints']

nb_execution_mode = 'off'
nb_merge_streams = True
nb_output_stderr = 'show'
myst_enable_extensions = ['dollarmath', 'colon_fence']
myst_heading_anchors = 3
suppress_warnings = ['myst.header', 'mystnb.unknown_mime_type', 'misc.highlighting_failure']

html_theme = 'sphinx_book_theme'
html_title = project
html_static_path = ['static', str(_mathjax)]
html_css_files = ['book.css']
html_show_sourcelink = False
html_theme_options = {
    'repository_url': _ini['git_url'],
    'use_repository_button': True,
    'home_page_in_toc': True,
    'show_toc_level': 2,
    'navigation_with_keys': False,
}
