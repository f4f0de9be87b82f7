"""Progress bars that suit both a terminal and a log: live on a TTY, a line every 30 s otherwise."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    tty = sys.stderr.isatty()
    kwargs.setdefault("mininterval", 0.1 if tty else 30.0)
    kwargs.setdefault("dynamic_ncols", tty)
    return tqdm(iterable, **kwargs)
