"""The MuJoCo C and MuJoCo Warp backends must tell the same story on Meta-World scenes.

Warp runs on its CPU device here, so these tests need no GPU (MTBENCH_TEST_DEVICE=cuda:0 puts the Warp blocks
on CUDA, tests/devices.py). The first run JIT-compiles MJWarp's kernels for the CPU and caches them in
~/.cache/warp (WARP_CACHE_PATH): this file took 2 minutes cold and 45 s warm on 2 cores, most of it stepping both
backends in the agreement tests.
"""

from __future__ import annotations

import os

import mujoco
import numpy as np
import pytest
import torch
from devices import DEVICE, ON_CUDA, host

from mtbench.sim.base import STATE_FIELDS, SceneBlock
from mtbench.sim.cpu import CpuBlock

metaworld = pytest.importorskip("metaworld")
pytest.importorskip("mujoco_warp")

from mtbench.sim.warp import WarpBlock  # noqa: E402

ASSETS = os.path.join(os.path.dirname(metaworld.__file__), "assets", "sawyer_xyz")
N = 4
NSUBSTEP = 5

# scene -> (hand start for the mocap, bodies to compare, the body Meta-World moves per world at reset)
SCENES = {
    "sawyer_drawer.xml": ((0.0, 0.6, 0.2), ("hand", "drawer", "drawer_link"), "drawer"),
    "sawyer_push_v3.xml": ((0.0, 0.6, 0.2), ("hand", "obj"), None),
    "sawyer_window_horizontal.xml": ((0.0, 0.4, 0.2), ("hand", "window", "windowb_a"), "window"),
}
HAND_SPACE = (np.array([-0.525, 0.348, -0.0525]), np.array([0.525, 1.025, 0.7]))  # SawyerXYZEnv._HAND_SPACE

FREE_RUN_TOL = 1e-3
"""Metres, after 100 free-running env steps in which the hand moves near the objects without touching
them (objects still rest on the table, the drawer in its case). Both engines integrate the same
equations, Warp in float32 and C in float64; measured differences are ~0.02 mm, float32 rounding
amplified by the stiff mocap weld. 1 mm leaves room for platform-dependent rounding and would still
catch a wrong quaternion order, a lost mocap/ctrl write, or a body_pos that only moved some geoms."""

ONE_STEP_TOL = 5e-3
"""Metres, after one env step (5 substeps) from the same state, along a contact-rich trajectory (the
hand presses on the drawer and window handles, squeezes and pushes the puck). Contacts are where the
engines differ by design: for the slightly tilted gripper box on a handle box, MuJoCo C 4.0 makes one
contact per pair where MJWarp's box-box collider makes a 4-point face manifold, so the arm's
accelerations differ while it presses. Measured worst 1.7 mm per step (hand, puck), median 0.002 to
0.6 mm. Free-running, these compound: after 100 such steps the hand differs by 5 cm in the drawer
scene and the puck by 6 cm (the puck case is chaotic even within MuJoCo C: rounding its initial state
to float32 moves it 10 cm), which is why contact is checked one step at a time."""


def load_scene(name: str) -> mujoco.MjModel:
    """A Meta-World XML as its env classes would set it up (they do not run on mujoco 4 themselves)."""
    model = mujoco.MjModel.from_xml_path(os.path.join(ASSETS, name))
    for i in range(model.neq):
        if model.eq_type[i] == mujoco.mjtEq.mjEQ_WELD:  # SawyerMocapBase.reset_mocap_welds
            model.eq_data[i, :11] = [0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 5.0]
    return model


def make(backend: str, model: mujoco.MjModel) -> SceneBlock:
    if backend == "cpu":
        return CpuBlock(model, N, nthread=1)
    return WarpBlock(model, N, device=DEVICE)


def body_ids(model: mujoco.MjModel, names: tuple[str, ...]) -> list[int]:
    return [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in names]


def settle(block: SceneBlock, hand: tuple[float, float, float], moved: int | None) -> None:
    """Meta-World's reset: per-world object placement, then 50 env steps holding the mocap at the start."""
    if moved is not None:
        shift = torch.linspace(-0.05, 0.05, block.n, dtype=block.dtype)
        block.body_pos[:, moved, 0] += shift.to(block.device)
        block.sync_model()
    block.mocap_pos[:] = torch.tensor(hand, dtype=block.dtype)
    block.mocap_quat[:] = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=block.dtype)
    block.ctrl[:] = torch.tensor([-1.0, 1.0], dtype=block.dtype)
    block.forward()
    for _ in range(50):
        block.step(NSUBSTEP)


def copy_state(src: SceneBlock, dst: SceneBlock) -> None:
    for name in (*STATE_FIELDS, "body_pos"):
        getattr(dst, name).copy_(getattr(src, name).to(dst.device, dst.dtype))
    dst.sync_model()
    dst.forward()


def actions(hand0: np.ndarray, target: np.ndarray, nstep: int) -> tuple[np.ndarray, np.ndarray]:
    """Open-loop controls, identical for both backends: reach toward `target` for 30 steps (1 cm/step at
    most, Meta-World's action scale), then smooth sweeps; the gripper opens and closes throughout."""
    n = hand0.shape[0]
    t = np.arange(nstep)[:, None, None]
    phase = np.arange(n)[None, :, None] + np.array([0.0, 1.0, 2.0])
    sweep = np.sin(2 * np.pi * t / np.array([40.0, 55.0, 35.0]) + phase)
    reach = np.clip((target - hand0) / 0.3, -1.0, 1.0)[None]
    delta = 0.01 * np.where(t < 30, reach, sweep)
    grip = np.sin(2 * np.pi * np.arange(nstep) / 60.0)[:, None] * np.ones(n)
    return delta, grip


def drive(block: SceneBlock, delta: np.ndarray, grip: np.ndarray, box: tuple[np.ndarray, np.ndarray]) -> None:
    lo, hi = (torch.as_tensor(b, dtype=block.dtype, device=block.device) for b in box)
    for k in range(delta.shape[0]):
        step = torch.as_tensor(delta[k], dtype=block.dtype, device=block.device)
        block.mocap_pos[:, 0] = torch.clamp(block.mocap_pos[:, 0] + step, lo, hi)
        a = torch.as_tensor(grip[k], dtype=block.dtype, device=block.device)
        block.ctrl[:] = torch.stack([a, -a], dim=1)
        assert not block.step(NSUBSTEP).any()


def setup_pair(name: str) -> tuple[CpuBlock, WarpBlock, list[int]]:
    """Both engines in the same settled state; ids: the bodies to compare, hand first, moved body last."""
    hand, compare, moved_name = SCENES[name]
    model = load_scene(name)
    moved = None if moved_name is None else body_ids(model, (moved_name,))[0]
    cpu = CpuBlock(model, N, nthread=1)
    settle(cpu, hand, moved)
    warp = WarpBlock(model, N, device=DEVICE)
    copy_state(cpu, warp)
    return cpu, warp, body_ids(model, compare)


def plan(cpu: CpuBlock, ids: list[int], height: float, nstep: int = 100):
    hand0 = cpu.xpos[:, ids[0]].numpy()
    target = cpu.xpos[:, ids[-1]].numpy() + np.array([0.0, 0.0, height])
    return actions(hand0, target, nstep)


def errors(cpu: CpuBlock, warp: WarpBlock, ids: list[int]) -> np.ndarray:
    """(world, body) distance between the engines' body positions, metres."""
    got = host(warp.xpos[:, ids]).double().numpy()
    assert np.isfinite(got).all()
    return np.linalg.norm(got - cpu.xpos[:, ids].numpy(), axis=-1)


@pytest.mark.parametrize("name", list(SCENES))
def test_engines_agree_free_running(name: str) -> None:
    """100 env steps with the hand sweeping 10 cm above the object, inside a 20 cm box around the start."""
    cpu, warp, ids = setup_pair(name)
    delta, grip = plan(cpu, ids, height=0.10)
    start = cpu.mocap_pos[0, 0].numpy()
    box = (start - 0.1, start + 0.1)
    for block in (cpu, warp):
        drive(block, delta, grip, box)
    err = errors(cpu, warp, ids).max(0)
    assert err.max() < FREE_RUN_TOL, f"{name}: max error (m) per body {dict(zip(SCENES[name][1], err))}"
    # the same through the views MJWarp fills in other kernels (and our static-geom kernel)
    assert np.abs(host(warp.site_xpos).double().numpy() - cpu.site_xpos.numpy()).max() < FREE_RUN_TOL
    assert np.abs(host(warp.geom_xpos).double().numpy() - cpu.geom_xpos.numpy()).max() < FREE_RUN_TOL
    # CpuBlock keeps MuJoCo's flat (n, ngeom, 9) rows; WarpBlock's are (n, ngeom, 3, 3): same row-major data
    xmat = host(warp.geom_xmat).double().numpy()
    assert np.abs(xmat - cpu.geom_xmat.numpy().reshape(xmat.shape)).max() < 1e-3


@pytest.mark.parametrize("name", list(SCENES))
def test_engines_agree_one_step_in_contact(name: str) -> None:
    """Reach into the object (Meta-World's whole hand space); at every step both backends start from the
    C engine's state, so only the physics of that one step is compared."""
    cpu, warp, ids = setup_pair(name)
    delta, grip = plan(cpu, ids, height=0.05)
    worst = np.zeros(len(ids))
    for k in range(delta.shape[0]):
        copy_state(cpu, warp)
        for block in (cpu, warp):
            drive(block, delta[k : k + 1], grip[k : k + 1], HAND_SPACE)
        worst = np.maximum(worst, errors(cpu, warp, ids).max(0))
    assert worst.max() < ONE_STEP_TOL, f"{name}: one-step error (m) per body {dict(zip(SCENES[name][1], worst))}"


def test_warp_tensors_are_engine_memory() -> None:
    warp = WarpBlock(load_scene("sawyer_drawer.xml"), N, device=DEVICE)
    d, m = warp._d, warp._m
    for name in (
        "qpos",
        "qvel",
        "ctrl",
        "mocap_pos",
        "mocap_quat",
        "qacc_warmstart",
        "xpos",
        "xquat",
        "site_xpos",
        "geom_xpos",
        "geom_xmat",
    ):
        assert getattr(warp, name).data_ptr() == getattr(d, name).ptr, name
    assert warp.body_pos.data_ptr() == m.body_pos.ptr
    model = warp.model
    assert warp.geom_xmat.shape == (N, model.ngeom, 3, 3)
    assert warp.mocap_quat.shape == (N, model.nmocap, 4)
    assert warp.body_pos.shape == (N, model.nbody, 3)
    assert warp.dtype == torch.float32 and warp.qpos.dtype == torch.float32


@pytest.mark.parametrize("backend", ["cpu", "warp"])
def test_body_pos_is_per_world(backend: str) -> None:
    model = load_scene("sawyer_drawer.xml")
    block = make(backend, model)
    drawer, link = body_ids(model, ("drawer", "drawer_link"))
    case = [
        g for g in range(model.ngeom) if model.body_weldid[model.geom_bodyid[g]] == 0 and model.geom_bodyid[g] > drawer
    ]  # the case's geoms, welded to the world below "drawer"
    assert case
    before = {k: getattr(block, k).clone() for k in ("xpos", "geom_xpos")}
    block.body_pos[1, drawer, 0] += 0.1
    block.sync_model()
    block.forward()
    moved = (block.xpos - before["xpos"]).double()
    assert torch.allclose(host(moved[1, [drawer, link], 0]), torch.full((2,), 0.1, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(
        host(block.geom_xpos - before["geom_xpos"])[1, case, 0].double(), torch.tensor(0.1).double(), atol=1e-5
    ), "world-welded geoms must follow body_pos"
    others = [0, 2, 3]
    assert moved[others].abs().max() == 0
    assert (block.geom_xpos - before["geom_xpos"])[others].abs().max() == 0
    assert block.model.body_pos[drawer, 0] == 0.0  # the host model is untouched


@pytest.mark.parametrize("backend", ["cpu", "warp"])
def test_step_flags_nan_world(backend: str) -> None:
    model = load_scene("sawyer_push_v3.xml")
    block = make(backend, model)
    block.qvel[2, 0] = float("nan")
    bad = block.step(NSUBSTEP)
    assert bad.dtype == torch.bool and bad.shape == (N,) and bad.device == block.device
    assert bad.tolist() == [False, False, True, False]


def test_cuda_without_gpu_says_what_to_do() -> None:
    if torch.cuda.is_available() or ON_CUDA:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="backend='cpu'"):
        WarpBlock(load_scene("sawyer_push_v3.xml"), N, device=torch.device("cuda:0"))


def test_per_world_model_fields_take_effect_in_both_engines():
    """Domain randomisation writes model fields per world: a box launched along a plane with a different
    friction in each world slides less the higher its friction, the same way on both backends."""
    from mtbench.sim import make_block

    xml = """<mujoco><option timestep="0.005"/><worldbody><geom type="plane" size="5 5 .1" friction="0.1"/>
      <body pos="0 0 .05"><freejoint/><geom type="box" size=".05 .05 .05" mass="1"/></body></worldbody></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    finals = {}
    for backend in ("cpu", "warp"):
        block = make_block(backend, model, 3, torch.device("cpu") if backend == "cpu" else DEVICE,
                           per_world=("geom_friction",))  # fmt: skip
        block.fields["geom_friction"][:, :, 0] = torch.tensor([0.2, 0.5, 1.0], dtype=block.dtype)[:, None]
        block.sync_model()
        block.qvel[:, 0] = 2.0
        for _ in range(100):
            block.step(1)
        finals[backend] = host(block.qpos[:, 0]).double()
    x = finals["cpu"]
    assert x[0] > x[1] > x[2] > 0.0, x  # higher friction, shorter slide
    torch.testing.assert_close(finals["warp"], x, atol=2e-3, rtol=0)
