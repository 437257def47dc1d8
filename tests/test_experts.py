"""Meta-World's own scripted experts (metaworld.policies, not written here) solve our tasks about as often
as they solve the reference: 50 goals per task (Meta-World's seeded goals), 500-step episodes, success at
any step. Reference counts measured on metaworld 3.1.1 + MuJoCo 3.3.0 (issues #2 and #4). MT10 runs in the
default suite; the other ported tasks are `slow` (run `make test-slow`)."""

import warnings

import pytest

import mtbench
from mtbench.envs.metaworld.experts import ScriptedExperts
from mtbench.envs.metaworld.registry import METAWORLD_NAMES, MT10_IDS, TASKS
from mtbench.eval import run_episodes

REFERENCE_SUCCESSES = {name: 50 for name in METAWORLD_NAMES}
REFERENCE_SUCCESSES.update(
    {
        "box-close-v3": 46, "button-press-wall-v3": 47, "disassemble-v3": 47, "door-open-v3": 47,
        "peg-insert-side-v3": 45, "peg-unplug-side-v3": 47, "soccer-v3": 45, "stick-pull-v3": 45,
        "push-back-v3": 49, "shelf-place-v3": 48, "sweep-into-v3": 45,
    }
)  # fmt: skip
# Where 50 goals cannot separate engine noise from a defect, compare over five seeds' goals. shelf-place:
# MuJoCo 3.3's half-depth box contacts (see test_parity) hold the light block a little more firmly; the
# reference counts come from `tools/reference_experts.py shelf-place-v3 --seeds 42 7 0 1 2` in .venv-ref
# (48, 46, 47, 48, 47). peg-unplug-side: the plug's grip box pivots differently in the grasp (box-box
# contacts again); reference 47, 50, 48 and 248/250 over seeds 42, 7, 123 and 1-5 (same tool).
MULTI_SEED_REFERENCE = {
    "shelf-place-v3": ((42, 7, 0, 1, 2), 236),
    "peg-unplug-side-v3": ((42, 7, 123, 1, 2, 3, 4, 5), 393),
}
MT10 = [METAWORLD_NAMES[i] for i in MT10_IDS]
OTHERS = [
    METAWORLD_NAMES[i] for i in sorted(TASKS) if i not in MT10_IDS and METAWORLD_NAMES[i] not in MULTI_SEED_REFERENCE
]
MULTI = [n for n in MULTI_SEED_REFERENCE if TASKS.get(METAWORLD_NAMES.index(n))]


def _run(names: list[str], seed: int = 42) -> dict:
    env = mtbench.make(
        names, num_envs=50 * len(names), device="cpu", seed=seed, episode_length=500, goal_mode="metaworld"
    )
    experts = ScriptedExperts(env.task_names, env.task_counts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # metaworld.policies warns about its own gains
        return {r.name: r for r in run_episodes(env, lambda e: experts(e.metaworld_obs), progress=False)}


@pytest.fixture(scope="module")
def mt10_results():
    return _run(MT10)


@pytest.fixture(scope="module")
def other_results():
    return _run(OTHERS)


def _check(r, name):
    assert r.episodes == 50
    ours, ref = round(r.success * 50), REFERENCE_SUCCESSES[name]
    assert abs(ours - ref) <= 2, f"{name}: ours {ours}/50, reference {ref}/50 (bar: 4 points = 2 episodes)"


@pytest.mark.parametrize("name", sorted(MT10))
def test_expert_success_within_4_points_of_reference(mt10_results, name):
    _check(mt10_results[name], name)


@pytest.mark.slow
@pytest.mark.parametrize("name", OTHERS)
def test_expert_success_mt50_within_4_points_of_reference(other_results, name):
    _check(other_results[name], name)


@pytest.mark.slow
@pytest.mark.parametrize("name", MULTI)
def test_expert_success_over_five_seeds_within_4_points_of_reference(name):
    seeds, ref = MULTI_SEED_REFERENCE[name]
    ours = sum(round(_run([name], seed)[name].success * 50) for seed in seeds)
    total = 50 * len(seeds)
    assert abs(ours - ref) * 25 <= total, f"{name}: ours {ours}/{total}, reference {ref}/{total}"  # 4 points, exact
