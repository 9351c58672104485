"""Send a step's output (prints, progress lines, warnings, tracebacks) to its Snakemake log file."""

from __future__ import annotations

import contextlib
import os
import traceback
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def to_file(path: str | os.PathLike | None) -> Iterator[None]:
    """Redirect stdout and stderr into `path` (created with its folder); a failure's traceback is kept there too."""
    if not path:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        try:
            yield
        except BaseException:
            traceback.print_exc(file=fh)
            raise
