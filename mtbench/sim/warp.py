"""MuJoCo Warp: all worlds advance together in one set of kernel launches, on a GPU or on Warp's CPU device.

The torch tensors are `wp.to_torch` aliases of MJWarp's own arrays, so task code reads and writes engine
memory directly and nothing is copied per step. On CUDA each distinct call (`step(k)` for a given `k`,
`forward()`) is captured once as a CUDA graph and replayed, which removes the Python launch overhead
of MJWarp's many small kernels; Warp's CPU device has no such overhead worth removing, so it launches.

Two MJWarp behaviours shape this file:

* Geoms welded to the world are "static": MJWarp computes their poses once, in `put_data`, and its
  kinematics never touches them again. Meta-World moves such bodies (the drawer case, the window
  frame) per world at reset through `body_pos`, so we recompute those geom poses ourselves in
  `forward`; without that, collisions would still see the case where the XML put it.
* Contact and constraint buffers are fixed-size. Contacts share one pool of `n * nconmax` slots,
  which broadphase candidate pairs also fill; once all worlds together need more, the pairs and contacts
  found last (in whichever worlds) are dropped. A world needing more than `njmax` constraint rows loses
  the excess rows. Either way MJWarp sets bits in the sticky `overflow` mask (a pool overflow flags every
  world) and keeps going with fewer contacts: objects may sink into each other or pass through. Its own
  printf per world per substep is switched off (`opt.warn_overflow = 0`, a compile-time constant of its
  kernels, so set before the first step); `mtbench.sim.capacity.check_overflow` reads the mask instead,
  once per iteration. The envs size the buffers per scene from measurement (the suites' capacity
  tables); NCONMAX/NJMAX are the defaults for a block built directly.
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco
import mujoco_warp as mjw
import numpy as np
import torch
import warp as wp

from mtbench.sim.base import SceneBlock

wp.config.log_level = wp.LOG_WARNING  # no banner or per-kernel load lines on stdout; compile errors still raise

NCONMAX = 64
"""Contacts per world, pooled over worlds (`n * NCONMAX` in all), for a block built directly; the envs size
each scene from measurement instead (mtbench/envs/*/capacity.py: Meta-World scenes peak at 12-56 contacts per
world, the Go1 at 50-78 on MuJoCo C, 24 on MJWarp)."""
NJMAX = 256
"""Constraint rows per world, a hard per-world cap, for a block built directly (measured peaks: Meta-World
52-232, elliptic cones with 3 or 4 rows per contact and the mocap weld's 6; the Go1 201-312, pyramidal cones
with 4 rows per contact)."""


@wp.func
def _xyzw(q: wp.quat) -> wp.quat:
    """MJWarp stores quaternions in MuJoCo's w,x,y,z order; Warp's quat builtins expect x,y,z,w."""
    return wp.quat(q[1], q[2], q[3], q[0])


@wp.kernel
def _static_geom_poses(
    geom_ids: wp.array(dtype=int),
    geom_bodyid: wp.array(dtype=int),
    geom_pos: wp.array2d(dtype=wp.vec3),
    geom_quat: wp.array2d(dtype=wp.quat),
    xpos: wp.array2d(dtype=wp.vec3),
    xquat: wp.array2d(dtype=wp.quat),
    geom_xpos: wp.array2d(dtype=wp.vec3),
    geom_xmat: wp.array2d(dtype=wp.mat33),
):
    """The part of mj_kinematics that MJWarp skips for world-welded geoms (see module docstring)."""
    worldid, i = wp.tid()
    g = geom_ids[i]
    b = geom_bodyid[g]
    q = _xyzw(xquat[worldid, b])
    geom_xpos[worldid, g] = xpos[worldid, b] + wp.quat_rotate(q, geom_pos[worldid % geom_pos.shape[0], g])
    geom_xmat[worldid, g] = wp.quat_to_matrix(q * _xyzw(geom_quat[worldid % geom_quat.shape[0], g]))


def _warp_device(device: torch.device) -> tuple[torch.device, wp.Device]:
    """The torch device made explicit (`cuda` -> `cuda:k`) and its Warp twin, or an error naming the fix."""
    if device.type == "cpu":
        return torch.device("cpu"), wp.get_device("cpu")
    if device.type != "cuda":
        raise ValueError(f"backend 'warp' runs on 'cpu' or 'cuda' devices, got {device}")
    if not torch.cuda.is_available():
        raise RuntimeError(
            f"device {device} requested but torch sees no CUDA GPU; use backend='cpu' (device='cpu'), "
            "or install a CUDA build of torch on a machine with a GPU"
        )
    if wp.get_cuda_device_count() == 0:
        raise RuntimeError(
            f"device {device} requested but Warp finds no CUDA device (CPU-only warp-lang or no driver); "
            "use backend='cpu', or install a CUDA-enabled warp-lang (pip install warp-lang)"
        )
    index = torch.cuda.current_device() if device.index is None else device.index
    return torch.device("cuda", index), wp.get_device(f"cuda:{index}")


class WarpBlock(SceneBlock):
    """`n` worlds of `model` on MuJoCo Warp, float32, on `device` (CUDA GPU or CPU)."""

    def __init__(
        self,
        model: mujoco.MjModel,
        n: int,
        device: torch.device | str = "cpu",
        nconmax: int = NCONMAX,
        njmax: int = NJMAX,
        per_world: tuple[str, ...] = (),
    ):
        self.model = model
        self.n = n
        self.capacity = {"nconmax": nconmax, "njmax": njmax}
        self.device, self._wdev = _warp_device(torch.device(device))
        self.dtype = torch.float32
        with wp.ScopedDevice(self._wdev):
            # per-world fields get a leading world axis of size n: MJWarp indexes them as [world % rows]
            names = ("body_pos", *per_world)
            self._m = mjw.put_model(model, batch_sizes={name: n for name in names})
            self._m.opt.warn_overflow = 0  # no printf flood: the `overflow` mask is polled (module docstring)
            self._d = mjw.put_data(model, mujoco.MjData(model), nworld=n, nconmax=nconmax, njmax=njmax)
            gb = model.geom_bodyid
            static = (model.body_weldid[gb] == 0) & (model.body_mocapid[model.body_rootid[gb]] == -1)
            self._static_geoms = wp.array(np.flatnonzero(static).astype(np.int32), dtype=int)
        d = self._d
        for name in ("qpos", "qvel", "ctrl", "mocap_pos", "mocap_quat", "qacc_warmstart"):
            setattr(self, name, wp.to_torch(getattr(d, name)))
        # vec3/quat/mat33 arrays arrive from to_torch as (n, k, 3) and (n, k, 3, 3) views
        for name in ("xpos", "xquat", "site_xpos", "geom_xpos", "geom_xmat", "sensordata"):
            setattr(self, name, wp.to_torch(getattr(d, name)))
        self.fields = {name: wp.to_torch(getattr(self._m, name)) for name in names}
        self.body_pos = self.fields["body_pos"]
        self.overflow = wp.to_torch(d.overflow)
        """Per-world sticky bitmask of `mjw.OverflowType`, set by every `step` that dropped pairs, contacts or
        constraint rows (or hit a solver iteration limit); never cleared here."""
        self._graphs: dict[object, wp.Graph] = {}
        self.capture = not self._wdev.is_cuda or wp.is_mempool_enabled(self._wdev)
        """On CUDA, capture each distinct call once as a CUDA graph and replay it (False: launch every kernel each
        time, as on Warp's CPU device). MJWarp allocates temporaries inside `step`, which a capture allows only from
        Warp's memory pool, so a device without one launches. `mtbench bench gpu` switches it to measure the graphs'
        gain and to check that replayed and launched stepping agree bit for bit."""
        if self._wdev.is_cuda and not wp.is_conditional_graph_supported():
            # the solver's early exit is a conditional graph node; without them it runs its full iteration count
            self._m.opt.graph_conditional = False
        self.forward()

    def _kinematics(self) -> None:
        mjw.kinematics(self._m, self._d)
        m, d = self._m, self._d
        if self._static_geoms.shape[0]:
            wp.launch(
                _static_geom_poses,
                dim=(self.n, self._static_geoms.shape[0]),
                inputs=[self._static_geoms, m.geom_bodyid, m.geom_pos, m.geom_quat, d.xpos, d.xquat],
                outputs=[d.geom_xpos, d.geom_xmat],
            )

    def _substeps(self, nsubstep: int) -> None:
        for _ in range(nsubstep):
            mjw.step(self._m, self._d)
        mjw.kinematics(self._m, self._d)  # static geoms cannot have moved since the last forward()

    def _run(self, key: object, fn: Callable[..., None], *args: object) -> None:
        """Run `fn(*args)` on the Warp device, ordered after pending torch work and before later torch work.

        On CUDA the launches are captured once per `key` and replayed: the graph (and the buffers it
        allocated) belongs to this block and stays valid because MJWarp never reallocates `Data`. With
        `capture` off they are launched on the same stream, in the same order with torch's.
        """
        with wp.ScopedDevice(self._wdev):
            if not self._wdev.is_cuda:
                fn(*args)
                return
            torch_stream = wp.stream_from_torch(torch.cuda.current_stream(self.device))
            warp_stream = self._wdev.stream
            warp_stream.wait_stream(torch_stream)
            if self.capture:
                graph = self._graphs.get(key)
                if graph is None:
                    with wp.ScopedCapture(device=self._wdev, stream=warp_stream) as capture:
                        fn(*args)
                    graph = self._graphs[key] = capture.graph
                wp.capture_launch(graph, stream=warp_stream)
            else:
                with wp.ScopedStream(warp_stream):
                    fn(*args)
            torch_stream.wait_stream(warp_stream)

    def step(self, nsubstep: int, kinematics: bool = True) -> torch.Tensor:
        """`kinematics` is ignored: on MJWarp it is one cheap launch inside the captured graph."""
        self._run(nsubstep, self._substeps, nsubstep)
        # MJWarp raises no instability warnings; a blown-up world shows as non-finite state
        return ~(torch.isfinite(self.qpos).all(dim=1) & torch.isfinite(self.qvel).all(dim=1))

    def _physics_only(self, nsubstep: int) -> None:
        for _ in range(nsubstep):
            mjw.step(self._m, self._d)

    def step_physics_only(self, nsubstep: int) -> None:
        """MuJoCo Warp's own `step`, `nsubstep` times, and nothing else (no kinematics after it, no blow-up mask):
        the raw stepping rate that `mtbench bench gpu` measures the env against, captured like `step`."""
        self._run(("physics", nsubstep), self._physics_only, nsubstep)

    def _full_forward(self) -> None:
        mjw.forward(self._m, self._d)
        self._kinematics()

    def forward(self, ids: torch.Tensor | None = None) -> None:
        """All worlds, whatever `ids` says: one batched launch costs about what a masked one would.

        A full `mjw.forward`, not kinematics only: after a world blew up, NaNs sit in derived arrays that
        MJWarp's next step reads (kinematics alone left the world blowing up again every step; measured).
        It costs about one substep per call; a cheaper scrub of just those arrays is a GPU-side TODO."""
        self._run("forward", self._full_forward)

    def sync_model(self) -> None:
        """`body_pos` is MJWarp's own array, but world-welded geoms only follow it once recomputed."""
        self.forward()
