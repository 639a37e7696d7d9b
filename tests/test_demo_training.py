"""The demo's trained variant: what it trains, and where the smoke suite runs it."""

from __future__ import annotations

from dataclasses import asdict

from test_runner_trained import trained_folder

from charbench.evals import runner
from charbench.evals.suites import load_suite
from charbench.tasks.contract import contract_for
from charbench.trainers.config import CharacterDPOConfig, CharacterSFTConfig
from charbench.trainers.demo import (
    DEMO_INTROSPECTION_VARIANT,
    DEMO_VARIANT,
    demo_checkpoint_dir,
    demo_checkpoint_dirs,
    demo_introspection,
    demo_training,
    with_demo_variant,
)
from charbench.trainers.distill import DistillSettings, _check_settings
from charbench.trainers.introspect import IntrospectSettings


def test_demo_training_differs_from_the_paper_recipe_only_in_scale():
    settings, config = demo_training()
    _check_settings(settings)
    assert config.global_batch_size % config.per_device_batch_size == 0
    assert settings.keep_truncated and settings.teacher == settings.student == "charbench/smollm2"
    # the README says: the paper's DPO hyperparameters except the scale (prompts, lengths, steps, batch, LoRA size)
    scale = {"global_batch_size", "per_device_batch_size", "max_length", "max_steps", "seed", "lora"}
    paper = asdict(CharacterDPOConfig())
    assert {k: v for k, v in asdict(config).items() if k not in scale} == {k: v for k, v in paper.items() if k not in scale}
    defaults = DistillSettings(constitution="sarcastic", teacher="charbench/smollm2", student="charbench/smollm2")
    changed = {k for k, v in settings.identity().items() if defaults.identity()[k] != v}
    assert changed == {"n_prompts", "max_tokens", "keep_truncated", "seed"}


def test_demo_introspection_differs_from_the_paper_recipe_only_in_scale(tmp_path):
    settings, config = demo_introspection(tmp_path / "dpo" / "model")
    assert settings.model == f"charbench/{tmp_path}/dpo/model" and settings.ablation == "full"
    assert settings.sft_weight == 0.25  # the paper's release merge
    scale = {"global_batch_size", "per_device_batch_size", "max_length", "max_steps", "seed", "lora"}
    paper = asdict(CharacterSFTConfig())
    assert {k: v for k, v in asdict(config).items() if k not in scale} == {k: v for k, v in paper.items() if k not in scale}
    defaults = IntrospectSettings(constitution="sarcastic", model=settings.model)
    changed = {k for k, v in settings.identity().items() if defaults.identity()[k] != v}
    assert changed == {"name", "n_reflection", "n_interaction", "turns", "reflection_max_tokens",
                       "interaction_max_tokens", "keep_truncated", "seed"}


def test_demo_checkpoints_live_in_charbench_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path))
    assert demo_checkpoint_dir() == tmp_path / "demo" / DEMO_VARIANT
    assert demo_checkpoint_dirs() == {DEMO_VARIANT: tmp_path / "demo" / DEMO_VARIANT,
                                      DEMO_INTROSPECTION_VARIANT: tmp_path / "demo" / DEMO_INTROSPECTION_VARIANT}


def test_demo_variant_joins_only_the_single_persona_entries_of_its_persona(tmp_path):
    smoke = load_suite("smoke")
    folder = trained_folder(tmp_path / "demo", demo_training()[0].constitution)
    full = trained_folder(tmp_path / "full", demo_training()[0].constitution, stage="sft", key="9c1d00")
    suite = with_demo_variant(smoke, {DEMO_VARIANT: folder, DEMO_INTROSPECTION_VARIANT: full})
    assert smoke.trained == {} and all(DEMO_VARIANT not in e["variants"] for e in smoke.tasks), "the suite is copied"
    changed = [e["task"] for e in suite.tasks if DEMO_VARIANT in e["variants"]]
    assert changed, "the smoke suite has single-persona sarcastic entries"
    for entry in suite.tasks:
        persona = entry.get("args", {}).get("constitution") or suite.personas[0]
        single = not contract_for(entry["task"]).per_persona
        assert (DEMO_VARIANT in entry["variants"]) == (single and persona == "sarcastic"), entry["task"]
    plan = runner.plan_suite(suite, ["charbench/smollm2"], tmp_path / "runs")
    runner.validate_plan(plan)
    trained_steps = [s for s in plan.steps if s.name.endswith(f"-{DEMO_VARIANT}")]
    assert sorted(s.task for s in trained_steps) == sorted(changed)
    assert {s.model.model for s in trained_steps} == {f"charbench/{folder}/model"}
    full_steps = [s for s in plan.steps if s.name.endswith(f"-{DEMO_INTROSPECTION_VARIANT}")]
    assert sorted(s.task for s in full_steps) == sorted(changed)
    assert {s.model.model for s in full_steps} == {f"charbench/{full}/model"}
    assert {s.roles["judge"].model for s in plan.steps if "judge" in s.roles} == {"charbench/smollm2"}


def test_a_run_key_does_not_depend_on_where_the_constitution_was_read(tmp_path):
    """The same built-in constitution read from another checkout gives the same run key (a fresh clone could not
    reuse the demo's cached training, and its row names changed with the install path)."""
    import shutil

    from charbench.constitutions import load_constitution
    from charbench.trainers.card import constitution_identity, run_key

    here = load_constitution("sarcastic")
    copy = tmp_path / "elsewhere" / "sarcastic.yaml"
    copy.parent.mkdir()
    shutil.copy(here.source, copy)
    there = load_constitution(str(copy))
    assert here.source != there.source
    assert run_key({"c": constitution_identity(here)}) == run_key({"c": constitution_identity(there)})
    assert constitution_identity(here) != constitution_identity(load_constitution("remorseful"))


def test_demo_replaces_its_cached_variants_when_they_belong_to_another_run(tmp_path, monkeypatch, capsys):
    """The demo owns $CHARBENCH_HOME/demo: variants trained by another version of it are trained again (both, as
    the introspection variant is built on the distilled one), where a training command of the user's refuses."""
    import json

    from charbench.trainers import demo
    from charbench.trainers import introspect as introspect_module
    from charbench.trainers.card import CARD_NAME, check_out_dir

    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path))
    folders = demo_checkpoint_dirs()
    for name, folder in folders.items():
        folder.mkdir(parents=True)
        (folder / CARD_NAME).write_text(json.dumps({"run_key": "old", "stage": "dpo" if name == DEMO_VARIANT else "sft"}))
    trained = []

    def fake_distill(folder, display):  # the real check of the folder, then a stand-in for minutes of training
        check_out_dir(folder, "new", "dpo")
        trained.append(folder)
        return {"model": "model"}

    def fake_introspect(settings, folder, config, display):
        check_out_dir(folder, "new", "sft")
        trained.append(folder)
        return {}

    monkeypatch.setattr(demo, "build_demo_checkpoint", fake_distill)
    monkeypatch.setattr(introspect_module, "introspect", fake_introspect)
    demo.build_demo_checkpoints(display="none")
    assert trained == [folders[DEMO_VARIANT], folders[DEMO_INTROSPECTION_VARIANT]]
    assert not any((f / CARD_NAME).exists() for f in folders.values())  # the old cards went with their folders
    assert "trained with other settings" in capsys.readouterr().out
