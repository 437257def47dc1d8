"""A user's mistake ends every subcommand with one line on stderr and exit status 2, before anything is built
(issue #18, items 1 and 7), and every subcommand reads `key=value` with the same grammar."""

from __future__ import annotations

import random

import pytest

import mtbench
from mtbench.cli import main
from mtbench.validation import OpenUnitFloat, PosInt, Range, check_values, conforms, describe


def _fails(capsys, argv: list[str]) -> str:
    """Run `mtbench argv`; assert exit status 2 and one line on stderr without a traceback; return the line."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2, (argv, e.value.code, err)
    assert "Traceback" not in err and err.startswith(f"mtbench {argv[0]}: "), err
    assert "\n" not in err.split("\nSee `mtbench")[0], err
    return err


@pytest.fixture
def nothing_built(monkeypatch):
    """Building an env (training's or a probe) fails the test: a config error must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("an env was built before the config was checked")

    monkeypatch.setattr(mtbench, "make", refuse)


# the list, each with what the message must say
BAD_TRAIN = [
    (["train.ppo.horizon=0"], "train.ppo.horizon=0 must be an integer >= 1"),
    (["train.ppo.minibatch_size=0"], "train.ppo.minibatch_size=0 must be an integer >= 1"),
    (["save_frequency=0"], "save_frequency=0 must be an integer >= 1 or null"),
    (["train.ppo.mini_epochs=0"], "train.ppo.mini_epochs=0 must be an integer >= 1"),
    (["eval.episodes_per_task=0"], "eval.episodes_per_task=0 must be an integer >= 1 or null"),
    (["env.episode_length=0"], "env.episode_length=0 must be an integer >= 1"),
    (["env.goal_mode=random"], "env.goal_mode='random' must be one of rand, fixed, metaworld"),
    (["parkour.onehot=terrain"], "parkour.onehot='terrain' must be one of tasks, terrains"),
    (["train.ppo.lr=-0.001"], "train.ppo.lr=-0.001 must be a number > 0"),
    (["scheme=famo", "scheme.w_lr=-1"], "scheme.w_lr=-1 must be a number > 0"),
    (["network=paco", "network.K=0"], "network.K=0 must be an integer >= 1 or null"),
    (['num_envs="8"'], "num_envs='8' must be an integer >= 1 or null"),
    (["train=sac", "train.sac.gamma=1.5"], r"train.sac.gamma=1.5 must be a number in [0, 1]"),
    (["train=grpo", "train.grpo.clip=0"], "train.grpo.clip=0 must be a number in (0, 1)"),
    (["train=pqn", "train.pqn.bins=1"], "train.pqn.bins=1 must be an integer >= 2"),
    (["network=moore", "network.agg_activation=relu"], "network.agg_activation='relu' must be one of tanh, linear"),
    (["network=mlp", "network.actor_units=[64,0]"], "network.actor_units=[64, 0] must be a list of"),
    (["max_minutes=0"], "max_minutes=0 must be a number > 0 or null"),
    (["progress=maybe"], "progress='maybe' must be true or false"),
    (["seed=1.5"], "seed=1.5 must be an integer"),
    (["train.ppo.gamma=nan"], "train.ppo.gamma=nan must be a number in [0, 1]"),
]


@pytest.mark.parametrize("overrides, message", BAD_TRAIN)
def test_bad_values_stop_train_before_anything_is_built(capsys, nothing_built, overrides, message):
    err = _fails(capsys, ["train", *overrides])
    assert message in err


@pytest.mark.parametrize("command", ["play", "bench env", "bench update", "params"])
def test_every_subcommand_ends_user_errors_with_status_2(capsys, nothing_built, command):
    argv = command.split()
    assert "num_envs" in _fails(capsys, [*argv, "num_envs=-3"]) or command.startswith("bench update")
    assert "expected key=value" in _fails(capsys, [*argv, "oops"])


def test_unknown_commands_tasks_and_options_are_one_line(capsys, nothing_built):
    assert "unknown command 'trian'" in _fails(capsys, ["trian"])
    assert "unknown task 'reach-v4'" in _fails(capsys, ["play", "task=reach-v4"])
    assert "unknown option 'polcy'" in _fails(capsys, ["play", "polcy=expert"])
    assert "policy='x' must be one of expert, random" in _fails(capsys, ["play", "policy=x"])
    assert "methods=['vanilla', 'nope'] must be" in _fails(capsys, ["bench", "update", "methods=[vanilla,nope]"])
    assert "usage: mtbench report" in _fails(capsys, ["report"])
    assert "has no eval.json" in _fails(capsys, ["report", "/nonexistent/run"])


def test_python_dash_m_train_ends_the_same_way(capsys, nothing_built):
    from mtbench.train import main as train_main

    with pytest.raises(SystemExit) as e:
        train_main(["train.ppo.horizon=0"])
    assert e.value.code == 2 and "train.ppo.horizon=0" in capsys.readouterr().err


def test_one_grammar_for_every_subcommand(monkeypatch):
    """`task=[a,b]`, `null`, quoted strings and bools parse alike in `train` (Hydra) and the small commands."""
    from mtbench.config import compose
    from mtbench.overrides import parse_overrides

    args = ["task=[pick-place-v3,push-v3]", "num_envs=null", "seed=7", 'experiment="8"']
    cfg = compose(args)
    small = parse_overrides(args, {"task": "mt10", "num_envs": 4, "seed": 0, "experiment": None})
    assert list(cfg.task) == small["task"] == ["pick-place-v3", "push-v3"]
    assert cfg.num_envs is small["num_envs"] is None
    assert cfg.seed == small["seed"] == 7 and cfg.experiment == small["experiment"] == "8"
    assert parse_overrides(["render=True", "noise=0.5"], {"render": False, "noise": 0.0}) == {
        "render": True,
        "noise": 0.5,
    }
    assert parse_overrides(["methods=a,b"], {"methods": ["x"]})["methods"] == ["a", "b"]


def test_play_takes_a_list_of_tasks(capsys):
    main(["play", "task=[pick-place-v3,push-v3]", "num_envs=2", "episode_length=3"])
    out = capsys.readouterr().out
    assert "| pick-place-v3 | 1 |" in out and "| push-v3 | 1 |" in out


def test_hints_accept_and_refuse_as_documented():
    assert conforms(3, float) and not conforms(True, float) and not conforms(True, int) and not conforms(2.0, int)
    assert not conforms(float("inf"), float) and conforms(None, PosInt | None) and not conforms(0, PosInt)
    assert conforms(1.0, OpenUnitFloat) and not conforms(0.0, OpenUnitFloat)
    assert 0.5 in Range(0, 1, lo_open=True, hi_open=True) and 1.0 not in Range(0, 1, hi_open=True)
    assert describe(PosInt | None) == "an integer >= 1 or null"
    assert conforms([1, 2], tuple[PosInt, ...]) and not conforms([1, 0], tuple[PosInt, ...])
    with pytest.raises(ValueError, match=r"x.n=0 must be an integer >= 1"):
        check_values({"n": 0, "free": object()}, {"n": PosInt}, "x.")


def test_env_constructors_check_their_own_arguments():
    with pytest.raises(ValueError, match="episode_length=0 must be an integer >= 1"):
        mtbench.make("reach-v3", device="cpu", episode_length=0)
    with pytest.raises(ValueError, match="onehot='x' must be one of tasks, terrains"):
        mtbench.make("parkour_flat", device="cpu", onehot="x")


FUZZ_VALUES = ["", "-1", "0", "abc", "[1,", "[]", "[a,b]", "null", "1e999", "-0.0", "'quoted'", "{a: 1}", "1,2",
               "${oops}", "true", "99999999999999999999", "=", "[[1]]", "nan"]  # fmt: skip


def test_fuzzed_overrides_never_end_in_a_traceback(capsys, monkeypatch):
    """Random malformed `key=value` for `mtbench train` and `mtbench play`: exit status 2, or a config that is
    valid (training and episodes replaced by no-ops, so a valid draw costs nothing)."""
    import mtbench.cli
    import mtbench.train
    from mtbench.config import cfg_keys

    monkeypatch.setattr(mtbench.train, "train", lambda cfg: [])
    monkeypatch.setattr(mtbench.train, "test", lambda cfg: [])
    real_make = mtbench.cli._make_env  # the real checks, on one world per task
    monkeypatch.setattr(mtbench.cli, "_make_env", lambda task, **o: real_make(task, **{**o, "num_envs": None}))
    monkeypatch.setattr("mtbench.eval.run_episodes", lambda *a, **k: [])
    monkeypatch.setattr("mtbench.eval.format_table", lambda *a, **k: "")
    train_keys = [k for k in cfg_keys("") if k not in ("train", "network", "scheme", "env", "parkour", "eval")]
    train_keys += [f"train.ppo.{k}" for k in cfg_keys("train.ppo")] + [f"env.{k}" for k in cfg_keys("env")]
    train_keys += [f"network.{k}" for k in cfg_keys("network")] + [f"eval.{k}" for k in cfg_keys("eval")]
    play_keys = ["task", "policy", "num_envs", "episode_length", "goal_mode", "seed", "noise", "render_steps"]
    rng = random.Random(0)
    for i in range(60):
        command, keys = ("train", train_keys) if i % 2 == 0 else ("play", play_keys)
        args = [f"{rng.choice(keys)}={rng.choice(FUZZ_VALUES)}" for _ in range(rng.randint(1, 3))]
        try:
            main([command, "sim_device=cpu", *args] if command == "train" else [command, *args])
        except SystemExit as e:
            assert e.code == 2, (args, e.code)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (args, err)
