"""Offscreen pictures of the batched env: one world per task copied into an `MjData` and drawn with
MuJoCo's renderer. Not the hot path: a person looks at scenes and policies with it (MP4 per task, PNG
contact sheet). Headless machines need EGL or OSMesa; `MUJOCO_GL` picks the GL library (mtbench sets egl on a
Linux machine without a display unless told otherwise). Any suite's env: its `view` says where to look from."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
import torch

from mtbench.envs.core import MultiTaskVecEnv, View

SIZE = (368, 368)  # multiples of 16, as H.264 encoders want


def offscreen_renderers(models: list[mujoco.MjModel], size: tuple[int, int]) -> list[mujoco.Renderer]:
    """One offscreen renderer per model, or an error that says which GL driver to install."""
    try:
        return [mujoco.Renderer(m, size[1], size[0]) for m in models]
    except Exception as e:  # noqa: BLE001 - GL failures come as several exception types
        raise RuntimeError(
            f"MuJoCo's offscreen renderer could not start ({type(e).__name__}: {e}). Install an EGL or "
            "OSMesa driver (e.g. apt install libegl1 or libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa."
        ) from e


def _camera(model: mujoco.MjModel, view: View) -> str | mujoco.MjvCamera:
    if view.track_body is None:
        return view.camera
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = model.body(view.track_body).id
    cam.distance, cam.azimuth, cam.elevation = view.distance, view.azimuth, view.elevation
    return cam


class WorldRenderer:
    """Draws world `world` of every task block of `env` from the env's `view` (or `view` given here). The models
    are copies: the renderer changes nothing the physics reads."""

    def __init__(self, env: MultiTaskVecEnv, world: int = 0, size: tuple[int, int] = SIZE, view: View | None = None):
        self.env, self.world = env, world
        view = view or env.view
        self.models = [copy.copy(blk.sim.model) for blk in env.blocks]
        if view.headlight is not None:
            for m in self.models:
                m.vis.headlight.ambient[:], m.vis.headlight.diffuse[:] = view.headlight
        self.datas = [mujoco.MjData(m) for m in self.models]
        self.renderers = offscreen_renderers(self.models, size)
        self.cameras = [_camera(m, view) for m in self.models]

    def frames(self) -> list[np.ndarray]:
        """One RGB image (H, W, 3) per task, of the current state."""
        out = []
        for blk, m, d, r, cam in zip(self.env.blocks, self.models, self.datas, self.renderers, self.cameras):
            sim = blk.sim
            get = lambda t: t[self.world].detach().to("cpu", torch.float64).numpy()
            m.body_pos[:] = get(sim.body_pos)
            d.qpos[:], d.qvel[:] = get(sim.qpos), get(sim.qvel)
            if m.nmocap:
                d.mocap_pos[:], d.mocap_quat[:] = get(sim.mocap_pos), get(sim.mocap_quat)
            mujoco.mj_forward(m, d)
            r.update_scene(d, camera=cam)
            out.append(r.render().copy())
        return out

    def close(self) -> None:
        for r in self.renderers:
            r.close()


def record_episode(
    env: MultiTaskVecEnv,
    act: Callable[[MultiTaskVecEnv], torch.Tensor],
    steps: int | None = None,
    every: int = 1,
    world: int = 0,
) -> list[list[np.ndarray]]:
    """Frames per task over one episode from a fresh reset (world `world` of each block)."""
    renderer = WorldRenderer(env, world)
    env.reset()
    frames = [[f] for f in renderer.frames()]
    for t in range(steps or env.episode_length):
        env.step(act(env))
        if (t + 1) % every == 0:
            for i, f in enumerate(renderer.frames()):
                frames[i].append(f)
    renderer.close()
    return frames


def write_videos(frames: list[list[np.ndarray]], names: list[str], out_dir: Path, fps: int = 30) -> list[Path]:
    import imageio.v3 as iio

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, seq in zip(names, frames):
        path = out_dir / f"{name}.mp4"
        iio.imwrite(path, np.stack(seq), fps=fps, codec="libx264", plugin="pyav" if _has_pyav() else None)
        paths.append(path)
    return paths


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def contact_sheet(
    frames: list[list[np.ndarray]], names: list[str], path: Path, per_task: int = 6, every: int = 1
) -> Path:
    """A PNG grid: one row per task, `per_task` frames evenly spaced over the episode (frames taken every
    `every` steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = len(frames)
    fig, axes = plt.subplots(rows, per_task, figsize=(1.8 * per_task, 1.9 * rows), squeeze=False)
    for i, (name, seq) in enumerate(zip(names, frames)):
        picks = np.linspace(0, len(seq) - 1, per_task).round().astype(int)
        for j, k in enumerate(picks):
            ax = axes[i][j]
            ax.imshow(seq[k])
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize=7)
            if i == 0:
                ax.set_title(f"step {k * every}", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def record_policy_videos(
    env: MultiTaskVecEnv, act: Callable[[MultiTaskVecEnv], torch.Tensor], out_dir: Path
) -> list[Path]:
    """Test mode's `record_videos=True`: one episode per task (world 0 of each block) as MP4, plus a
    contact sheet."""
    frames = record_episode(env, act)
    paths = write_videos(frames, env.task_names, out_dir)
    paths.append(contact_sheet(frames, env.task_names, out_dir / "contact_sheet.png"))
    return paths
