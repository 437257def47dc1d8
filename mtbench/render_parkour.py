"""Pictures of the parkour suite for a person to check by eye: an MP4 per terrain type following one robot
(MuJoCo's tracking camera on the trunk) and a PNG overview of the terrain grid. Not the hot path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import mujoco
import numpy as np
import torch

from mtbench.envs.parkour.robot import BASE_BODY
from mtbench.render import SIZE, offscreen_renderers, write_videos


class TrackingRenderer:
    """Draws world `world` of every terrain block of a `ParkourVecEnv` from a camera that follows its trunk."""

    def __init__(self, env, world: int = 0, size: tuple[int, int] = SIZE, distance: float = 2.2):
        self.env, self.world = env, world
        self.models = [b.scene.model for b in env.blocks]
        for m in self.models:  # the scenes carry no lights: a brighter headlight (visual only, physics unchanged)
            m.vis.headlight.ambient[:] = 0.45
            m.vis.headlight.diffuse[:] = 0.7
        self.datas = [mujoco.MjData(m) for m in self.models]
        self.renderers = offscreen_renderers(self.models, size)
        self.cams = []
        for m in self.models:
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
            cam.trackbodyid = m.body(BASE_BODY).id
            cam.distance, cam.azimuth, cam.elevation = distance, 30.0, -25.0  # behind-left, facing +x
            self.cams.append(cam)

    def frames(self) -> list[np.ndarray]:
        out = []
        for b, m, d, r, cam in zip(self.env.blocks, self.models, self.datas, self.renderers, self.cams):
            get = lambda t: t[self.world].detach().to("cpu", torch.float64).numpy()
            d.qpos[:], d.qvel[:] = get(b.sim.qpos), get(b.sim.qvel)
            mujoco.mj_forward(m, d)
            r.update_scene(d, camera=cam)
            out.append(r.render().copy())
        return out

    def close(self) -> None:
        for r in self.renderers:
            r.close()


def record_parkour(env, act: Callable, steps: int, out_dir: Path, every: int = 2) -> list[Path]:
    """One episode from a fresh reset: an MP4 per terrain type following world 0 of its block, and the
    terrain overview PNG."""
    from mtbench.envs.parkour.terrains import overview_png

    renderer = TrackingRenderer(env)
    env.reset()
    frames = [[f] for f in renderer.frames()]
    for t in range(steps):
        env.step(act(env))
        if (t + 1) % every == 0:
            for i, f in enumerate(renderer.frames()):
                frames[i].append(f)
    renderer.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = write_videos(frames, env.task_names, out_dir, fps=int(round(50 / every)))
    paths.append(Path(overview_png(str(out_dir / "terrains.png"))))
    return paths
