"""MuJoCo Warp's fixed contact and constraint buffers: sized per scene from measurement, overflow flagged by the
engine without any read in `step()`, reported by `check_sim()` with the scene and the setting to raise (Warp's CPU
device here; the kernels are the GPU's)."""

import mujoco_warp as mjw
import pytest
import torch

import mtbench
from mtbench.envs.metaworld.capacity import MEASURED as METAWORLD_NEEDS
from mtbench.envs.metaworld.registry import METAWORLD_NAMES
from mtbench.envs.parkour.capacity import MEASURED as PARKOUR_NEEDS
from mtbench.envs.parkour.terrains import TERRAIN_NAMES
from mtbench.envs.suites import SUITES
from mtbench.sim import capacity
from mtbench.sim.capacity import MARGIN, QUANTUM, SimOverflowError

TASK = "peg-insert-side-v3"  # the MT10 scene with the most contacts


def test_overflow_bits_are_mujoco_warps():
    t = mjw.OverflowType
    assert (capacity.NEFC, capacity.NJMAX_NNZ, capacity.BROADPHASE, capacity.NARROWPHASE, capacity.CCD) == (
        t.NEFC, t.NJMAX_NNZ, t.BROADPHASE, t.NARROWPHASE, t.CCD,
    )  # fmt: skip


@pytest.mark.parametrize("table,names", [(METAWORLD_NEEDS, METAWORLD_NAMES), (PARKOUR_NEEDS, TERRAIN_NAMES)])
def test_default_sizes_cover_the_measured_peaks(table, names):
    assert set(table) == set(names)  # every MT50 task, every terrain
    for need in table.values():
        assert need.ncon >= 1 and need.nefc >= 1
        assert need.nconmax >= MARGIN * need.ncon and need.njmax >= MARGIN * need.nefc
        assert need.nconmax % QUANTUM == 0 and need.njmax % QUANTUM == 0


def test_suites_name_the_config_section_their_env_names():
    for suite in SUITES.values():
        assert suite.env_class.options_key == suite.options_key


def test_blocks_get_their_scene_sizes_or_the_given_ones():
    tasks = ["reach-v3", TASK]
    env = mtbench.make(tasks, num_envs=2, device="cpu", backend="warp")
    for name, blk in zip(env.task_names, env.blocks):
        need = METAWORLD_NEEDS[name]
        assert dict(blk.sim.capacity) == {"nconmax": need.nconmax, "njmax": need.njmax}
        assert blk.sim._d.naconmax == need.nconmax * blk.sim.n and blk.sim._d.njmax == need.njmax
    env = mtbench.make(tasks, num_envs=2, device="cpu", backend="warp", nconmax=24, njmax=40)
    assert all(dict(b.sim.capacity) == {"nconmax": 24, "njmax": 40} for b in env.blocks)


class _Spy(torch.Tensor):
    """The overflow mask, recording every torch operation that touches it."""

    uses: list[str] = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        cls.uses.append(getattr(func, "__name__", str(func)))
        return super().__torch_function__(func, types, args, kwargs or {})


def test_small_constraint_buffer_raises_naming_scene_and_setting(capfd):
    env = mtbench.make(TASK, num_envs=2, device="cpu", backend="warp", njmax=4)  # the hand's weld alone needs 6
    env.reset()
    for blk in env.blocks:
        blk.sim.overflow = blk.sim.overflow.as_subclass(_Spy)  # same memory MJWarp writes
    _Spy.uses.clear()
    for _ in range(3):
        env.step(torch.zeros(2, 4))  # stepping neither reads the flags nor raises
    assert _Spy.uses == []
    assert "overflow" not in capfd.readouterr().out  # MJWarp's per-world printf is off
    assert int(env.blocks[0].sim.overflow.as_subclass(torch.Tensor).min()) & capacity.NEFC  # both worlds flagged
    _Spy.uses.clear()
    with pytest.raises(SimOverflowError) as err:
        env.check_sim()
    assert _Spy.uses  # the check is what reads them
    msg = str(err.value)
    assert f"scene '{TASK}'" in msg and "(2 of 2 worlds; njmax=4 per world)" in msg and "constraint rows" in msg
    assert "njmax=8 (training config: env.njmax=8;" in msg and "nconmax" not in msg
    env.reset()
    env.step(torch.zeros(2, 4))
    with pytest.raises(SimOverflowError):  # sticky: neither a reset nor a check clears the flags
        env.check_sim()


def test_default_sizes_pass_the_same_steps():
    env = mtbench.make(TASK, num_envs=2, device="cpu", backend="warp")
    env.reset()
    for _ in range(3):
        env.step(torch.zeros(2, 4))
    env.check_sim()


def test_small_contact_pool_raises_on_parkour():
    """Every Go1 collision geom is a broadphase pair with the height field at every step (18 per world), and those
    pairs fill the contact pool: 4 slots per world cannot hold them."""
    small = mtbench.make("parkour_flat", num_envs=2, device="cpu", backend="warp", nconmax=4)
    ok = mtbench.make("parkour_flat", num_envs=2, device="cpu", backend="warp")
    for env in (small, ok):
        env.reset()
        for _ in range(2):
            env.step(torch.zeros(2, 12))
    ok.check_sim()
    with pytest.raises(SimOverflowError) as err:
        small.check_sim()
    msg = str(err.value)
    assert "contact slots in scene 'flat' (2 of 2 worlds; nconmax=4 per world, pooled" in msg
    assert "nconmax=8 (training config: parkour.nconmax=8;" in msg


def test_c_engine_has_nothing_to_check():
    env = mtbench.make(TASK, num_envs=2, device="cpu", backend="cpu", nconmax=1, njmax=1)  # sizes are Warp's
    env.reset()
    env.step(torch.zeros(2, 4, dtype=torch.float64))
    assert env.blocks[0].sim.overflow is None
    env.check_sim()
