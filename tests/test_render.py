"""Rendering: a decodable multi-frame MP4, organs in colour, the patient's right on the viewer's left."""

import imageio.v3 as iio
import numpy as np

from abdoseg import labels as L
from abdoseg.render import render_video
from abdoseg.slices import overlay as slice_overlay


def _scene(axcodes="RAS"):
    """A right kidney at +x and a spleen at -x in world space, stored RAS or LPS."""
    lab = np.zeros((60, 50, 40), np.uint8)
    lab[42:54, 18:32, 10:30] = L.KIDNEY_RIGHT  # high x index = patient's right in RAS storage
    lab[6:18, 18:32, 10:30] = L.SPLEEN
    affine = np.diag([2.0, 2.0, 2.5, 1.0])
    affine[:3, 3] = [-60, -50, -50]
    if axcodes == "LPS":
        lab = lab[::-1, ::-1].copy()
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:3, 3] = [59, 49, 0]
        affine = affine @ flip
    return lab, affine


def _colour_column(frame: np.ndarray, rgb) -> float:
    """Mean column (0 left .. 1 right) of the pixels whose hue is that of `rgb`, whatever the shading."""
    f = frame[..., :3].astype(float)
    chroma = f.max(-1) - f.min(-1)
    target = np.asarray(rgb, float)
    target_dir = (target - target.mean()) / np.linalg.norm(target - target.mean())
    centred = f - f.mean(-1, keepdims=True)
    cos = (centred @ target_dir) / (np.linalg.norm(centred, axis=-1) + 1e-6)
    close = (chroma > 25) & (cos > 0.9)
    assert close.sum() > 50, "organ colour not found in the frame"
    return float(np.argwhere(close)[:, 1].mean() / frame.shape[1])


def test_video_decodes_and_right_is_on_the_viewers_left(tmp_path):
    for axcodes in ("RAS", "LPS"):
        lab, affine = _scene(axcodes)
        path = tmp_path / f"{axcodes}.mp4"
        assert render_video(lab, affine, path, frames=6, fps=6, size=160) == 6
        frames = np.stack(list(iio.imiter(path)))
        assert frames.shape[0] == 6 and frames.shape[-1] == 3
        # anterior view: the right-sided organ appears left of the left-sided one in the first frame
        right = _colour_column(frames[0], L.COLOURS[L.KIDNEY_RIGHT])
        left = _colour_column(frames[0], L.COLOURS[L.SPLEEN])
        assert right < 0.5 < left, (axcodes, right, left)


def test_empty_prediction_still_renders(tmp_path):
    lab = np.zeros((20, 20, 20), np.uint8)
    path = tmp_path / "empty.mp4"
    render_video(lab, np.eye(4), path, frames=3, fps=3, size=96)
    assert len(list(iio.imiter(path))) == 3


def test_slice_overlay_puts_right_on_the_left(tmp_path):
    lab, affine = _scene("LPS")
    image = np.where(lab > 0, 40, -100).astype(np.int16)
    path = tmp_path / "slices.png"
    slice_overlay(image, lab, affine, path, reference=lab)
    png = iio.imread(path)
    assert png.ndim == 3 and png.shape[1] > png.shape[0]
    axial = png[:, : png.shape[1] // 3, :3]
    blend = lambda o: np.array(L.COLOURS[o]) * 0.45 + 0.55 * np.array([0.2, 0.2, 0.2])  # noqa: E731 colour over tissue
    assert _colour_column(axial, blend(L.KIDNEY_RIGHT)) < 0.5 < _colour_column(axial, blend(L.SPLEEN))
