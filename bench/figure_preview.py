"""docs/preview.gif: the README's preview, every second frame of one rendered case's video, downscaled.
`python bench/figure_preview.py results/videos/CASE.mp4`."""

from __future__ import annotations

import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def main(video: str, out: str = str(REPO / "docs" / "preview.gif"), size: int = 256) -> None:
    frames = [Image.fromarray(np.asarray(f)).resize((size, size), Image.LANCZOS) for f in list(iio.imiter(video))[::2]]
    frames[0].save(out, save_all=True, append_images=frames[1:], duration=120, loop=0, optimize=True)
    print(f"wrote {out} ({len(frames)} frames, {Path(out).stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
