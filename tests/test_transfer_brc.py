"""`mtbench transfer`: BRC pretrained on two tasks, then a third learned by fine-tuning every weight, by its embedding
alone (every other tensor bit-identical), from a buffer seeded with the pretraining data, or from scratch."""

import pytest
import torch

from mtbench.errors import UserError
from mtbench.train import run as train
from mtbench.transfer import HELD_OUT, overrides_for, pretrain_tasks
from mtbench.transfer import run as transfer

TOY = ["train.brc.batch_size=16", "train.brc.gradient_steps_per_itr=2", "train.brc.buffer_per_task=24",
       "train.brc.critic_width=16", "train.brc.actor_width=16", "eval.episodes_per_task=1", "env.episode_length=5",
       "progress=false", "sim_device=cpu"]  # fmt: skip


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    train(["train=brc", "task_id=[reach-v3,push-v3]", "num_envs=4", "train.brc.warmup_per_task=2", *TOY,
           f"runs_dir={runs}", "experiment=pre", "max_iterations=8", "save_buffer=True"])  # fmt: skip
    return runs / "pre" / "checkpoints" / "latest.pt"


def _latest(runs, name):
    return torch.load(runs / name / "checkpoints" / "latest.pt", weights_only=False)


def _transfer(mode, pretrained, tmp_path, *extra):
    transfer([f"mode={mode}", f"checkpoint={pretrained}", "task=window-open-v3", "num_envs=2", *TOY,
              f"runs_dir={tmp_path}", "experiment=t", *extra])  # fmt: skip
    return _latest(tmp_path, "t")


def test_embedding_transfer_changes_nothing_but_the_new_embedding(pretrained, tmp_path):
    ckpt = _transfer("embedding", pretrained, tmp_path, "transitions=20")
    assert ckpt["iteration"] == 10  # 20 transitions of 2 envs; no warm-up: the batch of 16 is there from the 8th on
    assert ckpt["agent"]["updates"] == 3 * 2
    before = torch.load(pretrained, weights_only=False)["agent"]["net"]
    after = ckpt["agent"]["net"]
    new = {"critic.embedding.table.weight", "critic_target.embedding.table.weight"}
    assert set(after) == set(before)
    for k in sorted(set(after) - new):  # every weight, the target critic's and the temperature too
        torch.testing.assert_close(after[k], before[k], rtol=0, atol=0, msg=k)
    assert after["critic.embedding.table.weight"].shape == (1, 32)
    # the online embedding learned (the target follows it by Polyak averaging, so they now differ)
    assert not torch.equal(after["critic.embedding.table.weight"], after["critic_target.embedding.table.weight"])
    assert ckpt["config"]["train"]["brc"]["finetune"] == "embedding"


def test_model_transfer_fine_tunes_every_weight_from_the_checkpoint(pretrained, tmp_path):
    ckpt = _transfer("model", pretrained, tmp_path, "max_iterations=10", "train.brc.warmup_per_task=2")
    before = torch.load(pretrained, weights_only=False)["agent"]["net"]
    after = ckpt["agent"]["net"]
    assert ckpt["config"]["pretrained"] == str(pretrained) and ckpt["agent"]["updates"] > 0
    same_shape = [k for k in before if k in after and before[k].shape == after[k].shape]
    moved = [k for k in same_shape if not torch.equal(before[k], after[k])]
    assert "critic.qs.0.stem.0.weight" in moved and "actor.mean.weight" in moved


def test_data_transfer_seeds_the_buffer_with_pretraining_data(pretrained, tmp_path):
    ckpt = _transfer("data", pretrained, tmp_path, "max_iterations=1", "save_buffer=True",
                     "train.brc.warmup_per_task=100")  # fmt: skip
    saved = torch.load(pretrained, weights_only=False)["agent"]["buffer"]
    buf = ckpt["agent"]["buffer"]
    assert buf["size"] == 24  # full: the pretraining data (more than it holds) and one step of the new task
    assert (buf["task"] == 0).all()
    rows = {tuple(r.tolist()) for r in saved["obs"]}
    assert sum(tuple(r.tolist()) in rows for r in buf["obs"]) >= 22


def test_data_transfer_takes_every_ranks_buffer_of_a_torchrun_checkpoint(pretrained, tmp_path):
    """A torchrun checkpoint keeps each rank's buffer under `ranks` (rank 0's also at the top): data transfer draws
    from all of them, not from rank 0's alone."""
    ckpt = torch.load(pretrained, weights_only=False)
    whole = ckpt["agent"]["buffer"]
    half = whole["size"] // 2
    parts = [{"pos": 0, "size": half} | {k: v[a : a + half] for k, v in whole.items() if k not in ("pos", "size")}
             for a in (0, half)]  # fmt: skip
    ckpt["agent"]["buffer"] = parts[0]
    ckpt["ranks"] = [{"env": ckpt["env"], "rl_gen": ckpt["rl_gen"], "agent": {"buffer": b}} for b in parts]
    ckpt["world_size"] = 2
    torchrun_ckpt = tmp_path / "torchrun.pt"
    torch.save(ckpt, torchrun_ckpt)
    buf = _transfer("data", torchrun_ckpt, tmp_path, "max_iterations=1", "save_buffer=True",
                    "train.brc.warmup_per_task=100")["agent"]["buffer"]  # fmt: skip
    rank1 = {tuple(r.tolist()) for r in parts[1]["obs"]} - {tuple(r.tolist()) for r in parts[0]["obs"]}
    assert sum(tuple(r.tolist()) in rank1 for r in buf["obs"]) > 0


def test_transfer_errors_and_the_pretraining_split(pretrained, tmp_path):
    names = pretrain_tasks()
    assert len(names) == 45 and not set(HELD_OUT) & set(names)
    assert overrides_for("pretrain", None, ["seed=1"])[:2] == ["train=brc", f"task_id=[{','.join(names)}]"]
    with pytest.raises(UserError, match="mode=model learns one new task: give task="):
        transfer(["mode=model", f"checkpoint={pretrained}"])
    with pytest.raises(UserError, match="mode=bogus must be one of pretrain, model"):
        transfer(["mode=bogus"])
    with pytest.raises(UserError, match="needs checkpoint="):
        transfer(["mode=embedding", "task=window-open-v3"])
    train(["train=brc", "task=reach-v3", "num_envs=1", "train.brc.warmup_per_task=1", *TOY, f"runs_dir={tmp_path}",
           "experiment=nobuf", "max_iterations=1"])  # fmt: skip
    with pytest.raises(UserError, match="holds no replay buffer: pretrain with save_buffer=True"):
        transfer(["mode=data", f"checkpoint={tmp_path}/nobuf/checkpoints/latest.pt", "task=window-open-v3"])


def test_study_runs_every_mode_reuses_finished_runs_and_tabulates(pretrained, tmp_path):
    """`mode=study`: one run per (task, mode) under the study directory, the embedding run at its own warm-up and
    batch whatever the others get, the table's cells the runs' own evaluations; a rerun trains nothing."""
    import json

    import yaml

    from mtbench.transfer import study_table

    args = ["mode=study", f"checkpoint={pretrained}", "tasks=[window-open-v3]", "transitions=12", "num_envs=2",
            "embedding_transitions=20", f"study={tmp_path}", "seeds=[3]", *TOY,
            "train.brc.warmup_per_task=2"]  # fmt: skip
    root = transfer(args)
    runs = {m: tmp_path / f"window-open-v3_{m}_s3" for m in ("model", "embedding", "data", "scratch")}
    cfgs = {m: yaml.safe_load((d / "config.yaml").read_text()) for m, d in runs.items()}
    assert {m: c["max_iterations"] for m, c in cfgs.items()} == {"model": 6, "embedding": 10, "data": 6, "scratch": 6}
    assert cfgs["embedding"]["train"]["brc"]["warmup_per_task"] == 0
    assert cfgs["model"]["train"]["brc"]["warmup_per_task"] == 2
    assert cfgs["embedding"]["train"]["brc"]["finetune"] == "embedding"
    assert cfgs["data"]["train"]["brc"]["prefill"] == str(pretrained)
    assert cfgs["model"]["pretrained"] == str(pretrained) and cfgs["scratch"]["pretrained"] is None
    assert {c["seed"] for c in cfgs.values()} == {3}
    table = (root / "transfer.md").read_text()
    assert "| held-out task | model (12 transitions) | embedding (20 transitions) | data (12" in table
    row = next(line for line in table.splitlines() if line.startswith("| window-open-v3 |"))
    (r,) = json.loads((runs["scratch"] / "eval.json").read_text())
    assert row.split(" | ")[-1] == f"{100 * r['success']:.0f} % ({r['mean_return']:.0f}) |"
    stamps = {m: (d / "eval.json").stat().st_mtime_ns for m, d in runs.items()}
    transfer(args)
    assert {m: (d / "eval.json").stat().st_mtime_ns for m, d in runs.items()} == stamps
    assert study_table(root) == table and "the mean over 1 seed(s) per cell" in table
    # a second seed's run joins its cell as a mean, and the table says which cells have fewer seeds
    second = tmp_path / "window-open-v3_scratch_s4"
    second.mkdir()
    (second / "config.yaml").write_text((runs["scratch"] / "config.yaml").read_text())
    (second / "eval.json").write_text(json.dumps([r | {"success": r["success"] + 0.5, "mean_return": 1000.0}]))
    row = next(line for line in study_table(root).splitlines() if line.startswith("| window-open-v3 |"))
    mean_return = (r["mean_return"] + 1000.0) / 2
    assert row.split(" | ")[-1] == f"{100 * r['success'] + 25:.0f} % ({mean_return:.0f}) [2] |"
    for own_key in ("task=window-open-v3", "seed=2"):
        with pytest.raises(UserError, match="mode=study names its runs itself"):
            transfer(["mode=study", f"checkpoint={pretrained}", own_key])
    with pytest.raises(UserError, match="seeds=\\['a'\\] must be a list of integers"):
        transfer(["mode=study", f"checkpoint={pretrained}", "seeds=[a]"])
    with pytest.raises(UserError, match="modes=\\['bogus'\\] are not transfer modes"):
        transfer(["mode=study", f"checkpoint={pretrained}", "modes=[bogus]"])
    with pytest.raises(UserError, match="embedding_transitions=0 must be an integer >= 1"):
        transfer(["mode=study", f"checkpoint={pretrained}", "embedding_transitions=0"])
    with pytest.raises(UserError, match="tasks belong to mode=study"):
        transfer(["mode=model", f"checkpoint={pretrained}", "task=window-open-v3", "tasks=[reach-v3]"])
