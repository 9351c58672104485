"""How a step reports: its output (prints, progress lines, warnings, tracebacks) goes to its Snakemake log file,
and a failure also prints one line, `abdoseg: <path or parameter>: <what is wrong>`, on the console."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path
from typing import Iterator

# Exceptions whose message is written for the user (ours all derive from these); anything else is named by its type.
USER_ERRORS = (ValueError, RuntimeError, LookupError, OSError, EOFError)
_console: list = []  # the real stderr while a step writes into its log (see `to_file`)


def one_line(err: BaseException) -> str:
    """An exception as one line: `abdoseg: <what>`; an OSError names its file, other types their class."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    elif isinstance(err, MemoryError):
        text = "out of memory; see the README's bounded-resources note (predict.max_memory_gb)"
    else:
        text = str(err) or type(err).__name__
        if isinstance(err, KeyError) or not isinstance(err, USER_ERRORS):
            text = f"{type(err).__name__}: {text}"
    return "abdoseg: " + " ".join(text.split())


def warn(message: str) -> None:
    """A visible warning: one line on stderr, and on the console too while a step writes into its log."""
    for stream in {id(s): s for s in (sys.stderr, *_console[-1:])}.values():
        print(f"abdoseg: warning: {message}", file=stream, flush=True)


@contextlib.contextmanager
def to_file(path: str | os.PathLike | None) -> Iterator[None]:
    """Redirect stdout and stderr into `path` (created with its folder). On a failure the traceback goes to the
    log and one line to the console's stderr, and the script exits with status 1: Snakemake then shows the
    reason beside its own `Error in rule` instead of only in the log."""
    if not path:
        yield
        return
    console = sys.stderr
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as fh:
        _console.append(console)
        try:
            with contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
                yield
        except Exception as err:  # KeyboardInterrupt and SystemExit pass unchanged
            traceback.print_exc(file=fh)
            print(f"{one_line(err)} (traceback in {path})", file=console, flush=True)
            raise SystemExit(1) from None
        finally:
            _console.pop()
