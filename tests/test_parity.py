"""Equality with the real Meta-World (3.1.1 on MuJoCo 3.3.0) on its recorded states.

The data come from tools/record_reference.py: scripted expert, noisy expert and random episodes of
every MT10 task. Observation, reward and success are functions of the recorded physics state and the
episode's values; they must match to the bars of issue #2. Reset placement and one control step of
physics are compared too; those differ only by the MuJoCo version (4.0 here), with the bounds below.
"""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from reference_replay import check_place, load, one_step_physics, replay  # noqa: E402

from mtbench.envs.metaworld.goals import metaworld_goals  # noqa: E402
from mtbench.envs.metaworld.registry import METAWORLD_NAMES, MT10_IDS, TASKS  # noqa: E402

DATA = load()
PORTED = [METAWORLD_NAMES[i] for i in sorted(TASKS)]


# Engine-version differences measured per task (MuJoCo 4.0 here vs 3.3.0 in the reference), each
# reproduced to 1e-10 by stepping MuJoCo 3.3 from the recorded state, so the task code is not the cause:
# - handle-press/handle-pull: during the 50 settling steps at reset the fingers touch the moved handle;
#   3.3 leaves the claw pressed into the bar (0.27 mm penetration), pushing the fingertip centre 6.3 mm
#   sideways on one recorded goal; MuJoCo 4 ends 0.97 mm clear.
# - door-close: the 50-step hand reset ends with the arm still swinging (~2 rad/s), the two versions land
#   1.4 mm apart.
INIT_TCP_BAR = {"handle-press-v3": 1e-2, "handle-pull-v3": 1e-2, "door-close-v3": 2e-3}
# - dial-turn: the claw strikes the knob box spinning at 5-11 rad/s; 3.3 makes 3-4 box-box contact points
#   where 4.0 makes one, so the knob angle differs by up to 0.051 rad on 6 of 450 steps (median 2e-5).
PHYSICS_MAX_BAR = {"dial-turn-v3": 0.1}
# - box-on-box contacts: MuJoCo 3.3's CPU engine reports half the true penetration depth (a bug fixed in
#   4.0, see mujoco_warp PR #822), so box pucks rest 3.2e-5 m deeper in the reference (push-back,
#   shelf-place, sweep-into: object start height read from the settled scene); hand-insert, whose every
#   contact is box-box, and stick-pull, whose stick is held between box pads, differ by ~1.4e-3 per step.
#   Emulating 3.3's depth (softer box solref/solimp) closes these gaps to 1e-7..4e-4, which confirms the
#   cause; we keep MuJoCo 4's physics.
PLACE_BAR = {"push-back-v3": 1e-4, "shelf-place-v3": 1e-4, "sweep-into-v3": 1e-4}
PHYSICS_MEDIAN_BAR = {"hand-insert-v3": 3e-3, "stick-pull-v3": 3e-3}


def _task(name):
    return TASKS[METAWORLD_NAMES.index(name)]()


def test_all_mt10_tasks_ported():
    assert set(METAWORLD_NAMES[i] for i in MT10_IDS) <= set(PORTED)


def test_every_ported_task_has_reference_data():
    missing = sorted(set(PORTED) - set(DATA.tasks()))
    assert not missing, f"record them: python tools/record_reference.py --tasks {' '.join(missing)} --out ..."


@pytest.mark.parametrize("name", PORTED)
def test_obs_reward_success_equal_reference(name):
    rep = replay(_task(name), DATA)
    assert rep.steps >= 450
    assert rep.obs_err <= 1e-5, rep
    assert rep.reward_rel_err <= 1e-4, rep
    assert rep.success_mismatch == 0, rep


@pytest.mark.parametrize("name", PORTED)
def test_reset_placement_matches_reference(name):
    err = check_place(_task(name), DATA)
    # goal and object placement and the moved bodies follow the reset vector exactly; heights read from
    # the settled scene differ by MuJoCo 4 vs 3.3 contact resolution (measured <= 2e-6 m)
    place_bar = PLACE_BAR.get(name, 1e-5)
    assert err["target_pos"] <= place_bar and err["obj_init_pos"] <= place_bar and err["body_pos"] <= 1e-9, err
    # the 250-substep hand settling drifts in the arm's null space between MuJoCo versions (measured
    # up to 1.5e-2 rad on one joint); the fingertip centre stays within 0.3 mm (measured 2.7e-4 m)
    assert err["init_tcp"] <= INIT_TCP_BAR.get(name, 5e-4), err
    for key, value in err.items():
        if key.startswith("episode/"):
            assert value <= 1e-3, err


@pytest.mark.parametrize("name", PORTED)
def test_one_control_step_of_physics(name):
    # MuJoCo 4.0 vs the reference's 3.3.0 from identical states and actions, 5 substeps: typical steps
    # agree to 1e-3 (m or rad); contact-rich ones (door hinge under the gripper) reach 3e-2 (measured)
    err = one_step_physics(_task(name), DATA)
    median_bar, max_bar = PHYSICS_MEDIAN_BAR.get(name, 1e-3), PHYSICS_MAX_BAR.get(name, 5e-2)
    assert np.median(err) <= median_bar and err.max() <= max_bar, (np.median(err), err.max())


@pytest.mark.parametrize("name", PORTED)
@pytest.mark.parametrize("seed,key", [(42, "goals"), (7, "goals_seed7")])
def test_metaworld_goal_sequence(name, seed, key):
    task = _task(name)
    ref = DATA[f"{name}/{key}"]
    ours = metaworld_goals(task, seed)
    np.testing.assert_allclose(ours[:, : ref.shape[1]], ref, rtol=0, atol=1e-12)
    assert torch.from_numpy(ours).shape[0] == 50
