"""Look at the built documentation: a headless-browser screenshot of every page a reader
lands on (landing page, install, backends, each tutorial), and checks of what a build's
exit code cannot see.

A page fails when its text shows something no reader should see:

- a Python object repr (``<matplotlib.legend.Legend object at 0x...>``, ``object at 0x``);
- a traceback, or a cell that printed a bare ``[]``;
- maths left as a code literal (``sqrt(``, ``**2`` inside ``<code>``) instead of MathJax;

and when a figure is blank (one colour: a panel drawn in a later cell, or nothing drawn).
The screenshots go to ``--out`` (default ``docs/_build/screenshots``) to be looked at: a
check of the page's pixels is no substitute for a person reading it.

Usage, from the repository root after ``sphinx-build -b html docs docs/_build/html``::

    python docs/check_pages.py [--html docs/_build/html] [--out DIR] [--no-screenshots]

Screenshots need Chromium (Debian: ``apt-get install chromium``); without it the text and
figure checks still run and the screenshots are skipped with a note. MathJax loads from
its CDN: a screenshot taken offline shows the TeX source instead of the formulas. Exit
status 1 when a page fails (CI runs the checks with ``--no-screenshots``).
"""

from __future__ import annotations

import argparse
import html
import pathlib
import re
import shutil
import subprocess
import sys

#: Text a reader must never see on a page (regex, what it means).
BAD_TEXT = [
    (re.compile(r"object at 0x[0-9a-f]+"), "an object repr"),
    (re.compile(r"<matplotlib\.[\w.]+ object"), "a matplotlib repr"),
    (re.compile(r"Traceback \(most recent call last\)"), "a traceback"),
]
#: Maths shown as code: an operator of Python's inside an inline code literal.
CODE_MATHS = re.compile(
    r"<code[^>]*>(?:(?!</code>).)*(?:\*\*\d|sqrt\(|\\frac)(?:(?!</code>).)*</code>", re.S
)
#: A cell output block of sphinx-gallery.
OUTPUT = re.compile(r'<div class="sphx-glr-script-out">(.*?)</div>', re.S)
IMAGE = re.compile(r'<img[^>]+src="([^"]+\.png)"')


def pages(root: pathlib.Path) -> list[pathlib.Path]:
    """The landing page, the top-level pages and every tutorial."""
    top = [root / name for name in ("index.html", "install.html", "backends.html")]
    tutorials = sorted(root.glob("auto_examples/*/plot_*.html"))
    return [p for p in top if p.exists()] + tutorials


def text_problems(page: pathlib.Path) -> list[str]:
    source = page.read_text(encoding="utf-8")
    problems = []
    for pattern, what in BAD_TEXT:
        match = pattern.search(html.unescape(source))
        if match:
            problems.append(f"{what}: {match.group(0)!r}")
    for block in OUTPUT.findall(source):
        text = html.unescape(re.sub(r"<[^>]+>", "", block)).strip()
        if text == "[]" or "\n[]\n" in f"\n{text}\n":
            problems.append("a cell printed a bare []")
    if CODE_MATHS.search(source):
        problems.append(f"maths as a code literal: {CODE_MATHS.search(source).group(0)[:80]!r}")
    return problems


def blank_figures(page: pathlib.Path) -> list[str]:
    """Figures of the page that are a single colour (nothing drawn)."""
    import numpy as np
    from matplotlib.image import imread

    blank = []
    for src in IMAGE.findall(page.read_text(encoding="utf-8")):
        path = (page.parent / src).resolve()
        if not path.exists() or "sphx_glr" not in path.name or "thumb" in path.name:
            continue
        pixels = imread(path)[..., :3]
        if float(np.ptp(pixels)) == 0.0:
            blank.append(f"blank figure {path.name}")
    return blank


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(chrome: str, page: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """A full-width, 3,000-pixel-tall screenshot of ``page`` (headless Chromium)."""
    target = out / (page.parent.name + "__" + page.stem + ".png")
    subprocess.run(
        [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--window-size=1280,3000", f"--screenshot={target}", page.resolve().as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return target


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", default="docs/_build/html", type=pathlib.Path)
    parser.add_argument("--out", default="docs/_build/screenshots", type=pathlib.Path)
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    found = pages(args.html)
    if not found:
        print(f"no pages under {args.html}: build the docs first", file=sys.stderr)
        return 1
    chrome = None if args.no_screenshots else browser()
    if chrome is None and not args.no_screenshots:
        print("note: no Chromium found, screenshots skipped (apt-get install chromium)")
    if chrome:
        args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for page in found:
        problems = text_problems(page) + blank_figures(page)
        shot = screenshot(chrome, page, args.out) if chrome else None
        name = page.relative_to(args.html)
        status = "ok" if not problems else "FAIL"
        print(f"{status:4}  {name}" + (f"  -> {shot}" if shot else ""))
        for problem in problems:
            print(f"      {problem}")
        failed += bool(problems)
    print(f"{len(found)} pages, {failed} failing")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
