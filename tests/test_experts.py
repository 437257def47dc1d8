"""Meta-World's own scripted experts (metaworld.policies, not written here) solve our MT10 about as often
as they solve the reference: 50 goals per task (Meta-World's seeded goals), 500-step episodes, success at
any step. Reference counts measured on metaworld 3.1.1 + MuJoCo 3.3.0 (shared/reference/anchors.md)."""

import warnings

import pytest

import mtbench
from mtbench.envs.metaworld.experts import ScriptedExperts
from mtbench.envs.metaworld.registry import METAWORLD_NAMES, MT10_IDS
from mtbench.eval import run_episodes

REFERENCE_SUCCESSES = {name: 50 for name in (METAWORLD_NAMES[i] for i in MT10_IDS)}
REFERENCE_SUCCESSES.update({"door-open-v3": 47, "peg-insert-side-v3": 45})


@pytest.fixture(scope="module")
def results():
    env = mtbench.make("mt10", num_envs=500, device="cpu", seed=42, episode_length=500, goal_mode="metaworld")
    experts = ScriptedExperts(env.task_names, env.task_counts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # metaworld.policies warns about its own gains
        return {r.name: r for r in run_episodes(env, lambda e: experts(e.metaworld_obs), progress=False)}


@pytest.mark.parametrize("name", sorted(REFERENCE_SUCCESSES))
def test_expert_success_within_4_points_of_reference(results, name):
    r = results[name]
    assert r.episodes == 50
    ref = REFERENCE_SUCCESSES[name] / 50
    assert abs(r.success - ref) <= 0.04, f"{name}: ours {r.success:.2f}, reference {ref:.2f}"
