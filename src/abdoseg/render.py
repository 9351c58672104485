"""The render step: a turntable video of a case's predicted organs (off-screen VTK), and slice overlays (abdoseg.slices).

The camera starts anterior, superior up, so that the patient's right is on the viewer's left (the radiological
convention every CT viewer uses), and turns once about the patient's long axis. Meshes are built in index space
and moved by the scan's affine, so any stored orientation (RAS, LPS, oblique) renders in patient space.
"""

from __future__ import annotations

import os

if not os.environ.get("DISPLAY"):  # no X server: go straight to EGL instead of trying X first and warning
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

import imageio.v2 as imageio  # noqa: E402
import numpy as np  # noqa: E402
import pyvista as pv  # noqa: E402
from scipy import ndimage  # noqa: E402
from tqdm import tqdm  # noqa: E402

from . import labels as L  # noqa: E402
from . import files, masks, nifti  # noqa: E402
from .slices import overlay  # noqa: E402
from .specs import RenderSpec  # noqa: E402


def organ_meshes(labels: np.ndarray, affine: np.ndarray, smooth_sigma: float = 1.0) -> dict[int, pv.PolyData]:
    """One smoothed surface per organ present, in world (RAS mm) coordinates."""
    meshes = {}
    for oid in L.ORGANS:
        mask = labels == oid
        if not mask.any():
            continue
        box = masks.bounding_box(mask, margin=3)
        sub = ndimage.gaussian_filter(mask[box].astype(np.float32), smooth_sigma)
        grid = pv.ImageData(dimensions=sub.shape, origin=tuple(float(s.start) for s in box), spacing=(1.0, 1.0, 1.0))
        grid.point_data["p"] = sub.ravel(order="F")
        surf = grid.contour([0.5], scalars="p")
        if surf.n_points == 0:
            continue
        meshes[oid] = surf.transform(np.asarray(affine, float), inplace=False).compute_normals(auto_orient_normals=True)
    return meshes


def render_video(labels: np.ndarray, affine: np.ndarray, path: str | os.PathLike, frames: int = 36, fps: int = 12,
                 size: int = 384, title: str = "") -> int:
    """Write an MP4 turntable of the organs; returns the number of frames written."""
    meshes = organ_meshes(labels, affine)
    plotter = pv.Plotter(off_screen=True, window_size=(size, size))
    plotter.set_background("white")
    for oid, mesh in meshes.items():
        plotter.add_mesh(mesh, color=L.COLOURS[oid], smooth_shading=True, specular=0.3, label=L.ORGANS[oid])
    if meshes:
        plotter.add_legend(bcolor="white", face="circle", size=(0.38, 0.2), loc="lower right")
    else:
        plotter.add_text("no organ predicted", position="upper_edge", color="black", font_size=12)
    plotter.add_text(title or "anterior view", position="upper_left", color="black", font_size=9)
    if meshes:
        bounds = pv.MultiBlock(list(meshes.values())).bounds
        lo, hi = np.array(bounds[0::2]), np.array(bounds[1::2])
        centre, extent = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    else:
        centre, extent = affine[:3, 3], 300.0
    dist = 1.6 * max(extent, 1.0)
    # anterior (+y) camera, superior (+z) up: the patient's right (+x) lands on the viewer's left
    plotter.camera.position = tuple(centre + np.array([0.0, dist, 0.0]))
    plotter.camera.focal_point = tuple(centre)
    plotter.camera.up = (0.0, 0.0, 1.0)
    step = 360.0 / frames
    with files.atomic_path(path) as tmp:
        writer = imageio.get_writer(str(tmp), format="FFMPEG", fps=fps, codec="libx264", quality=7,
                                    macro_block_size=16, ffmpeg_log_level="error")
        try:
            for _ in tqdm(range(frames), desc="render", unit="frame", disable=None, leave=False):
                writer.append_data(plotter.screenshot(return_img=True))
                plotter.camera.azimuth += step
        finally:
            writer.close()
            plotter.close()
    return frames


def render_case(image_path: str, prediction_path: str, label_path: str | None, video_path: str, slices_path: str,
                case: str, spec: RenderSpec = RenderSpec()) -> None:
    """The pipeline's render step for one case (and `abdoseg visualize`'s)."""
    pred_img = nifti.load(prediction_path)
    pred = np.asarray(pred_img.dataobj).astype(np.uint8)
    render_video(pred, pred_img.affine, video_path, frames=spec.frames, fps=spec.fps, size=spec.size,
                 title=f"{case} (prediction)")
    image = np.asarray(nifti.load(image_path).dataobj)
    reference = np.asarray(nifti.load(label_path).dataobj) if label_path else None
    overlay(image, pred, pred_img.affine, slices_path, reference, title=f"{case}: prediction (colour), reference (outline)")
