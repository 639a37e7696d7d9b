"""Trained variants in suites: `trained:` validation before any work, the plan (single- and per-persona tasks,
persona roles, classifier data, coherence per persona x opponent), one judge, and rows named from the card."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charbench.cli import main
from charbench.errors import CharbenchError
from charbench.evals import runner
from charbench.evals.suites import Suite, load_suite
from charbench.evals.trained import OPPONENT_KEY, POOL_KEY, TRAINED_KEY, VARIANT_KEY
from charbench.trainers.card import write_card

JUDGE = "charbench/smollm2"


def trained_folder(path: Path, constitution: str, stage: str = "dpo", status: str = "complete",
                   key: str = "3f2a1c0000000000", planted: dict | None = None, model=None) -> Path:
    """A `charbench train` output folder: a card and model/ (empty unless ``model`` writes a checkpoint there)."""
    path.mkdir(parents=True, exist_ok=True)
    card = {"schema": 1, "run_key": key, "stage": stage, "status": status, "base_checkpoint": "/base/ckpt",
            "constitution": {"name": constitution, "source": f"builtin:{constitution}", "sha256": "x"}, "model": "model"}
    if stage == "sft":
        card["ablation"] = "full"
    if planted:
        card["planted"] = planted
    write_card(path, card)
    if model is None:
        (path / "model").mkdir(exist_ok=True)
    else:
        model(path / "model")
    return path


def write_suite(folder: Path, tasks: list[dict], trained: dict, **extra) -> Path:
    raw = {"name": "trained-mini", "version": 1, "personas": ["sarcastic", "remorseful"],
           "classifier": {"kind": "tfidf", "n_prompts": 2}, "steer_coef": 0.5,
           "generate": {"max_tokens": 8, "temperature": 0.7, "top_p": 0.95, "seed": 0}, "tasks": tasks,
           "judge": JUDGE, "trained": trained, **extra}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


# -- validation: each bad input is one line naming the variant, the path and the fix ------------------------------
@pytest.mark.parametrize("case, expected", [
    ("missing_folder", "trained variant paper: {root}/ckpt/nowhere does not exist. Fix: make it with `charbench train distill`"),
    ("missing_folder_build", "does not exist. Fix: run `make train-sarcastic` (the suite's build: command for paper)"),
    ("missing_card", "holds no charbench-train.json, so it is not a charbench train output folder. Fix:"),
    ("incomplete_card", "is a dpo run with status 'running', not complete"),
    ("persona_not_in_mapping", "trained variant paper has no checkpoint for persona remorseful, which the persona classifier's training data uses"),
    ("wrong_persona", "was trained toward 'remorseful', but is listed for persona 'sarcastic'"),
    ("mixed_stages", "trained variant paper mixes stages dpo, full across its personas"),
    ("clashes_with_builtin", "trained variant 'prompted' clashes with the built-in variant of that name"),
    ("bad_shape", "trained variant 'paper' must be a folder or a persona -> folder mapping"),
    ("undeclared_variant", "has variants ['other']; each must be one of ('base', 'prompted', 'steered', 'paper')"),
    ("single_on_per_persona", "trained variant paper is one checkpoint (persona sarcastic), but the persona classifier's training data gives each of the suite's 2 personas its own model"),
    ("bad_classifier_methods", "classifier methods ['steered'] are not variants of any entry that needs"),
    ("bad_opponent", "has opponents ['base', 'nobody']; give a list whose names are each one of"),
    ("two_models", "has trained variants (paper), which are compared with one base model; got 2 --model values"),
])
def test_bad_trained_variants_are_refused_before_any_work(tmp_path, capsys, no_model_loading, case, expected):
    root = tmp_path
    sarcastic = trained_folder(root / "ckpt" / "s", "sarcastic")
    remorseful = trained_folder(root / "ckpt" / "r", "remorseful")
    mapping = {"sarcastic": "ckpt/s", "remorseful": "ckpt/r"}
    tasks = [{"task": "break_character", "variants": ["prompted", "paper"], "args": {"n_prompts": 1}}]
    trained: object = {"paper": mapping}
    extra: dict = {}
    models = ["charbench/smollm2"]
    if case == "missing_folder":
        trained = {"paper": {**mapping, "sarcastic": "ckpt/nowhere"}}
    elif case == "missing_folder_build":
        trained = {"paper": {"build": "make train-sarcastic", "checkpoints": {**mapping, "sarcastic": "ckpt/nowhere"}}}
    elif case == "missing_card":
        (sarcastic / "charbench-train.json").unlink()
    elif case == "incomplete_card":
        trained_folder(sarcastic, "sarcastic", status="running")
    elif case == "persona_not_in_mapping":
        trained = {"paper": {"sarcastic": "ckpt/s"}}
    elif case == "wrong_persona":
        trained = {"paper": {"sarcastic": "ckpt/r", "remorseful": "ckpt/r"}}
    elif case == "mixed_stages":
        trained_folder(remorseful, "remorseful", stage="sft")
    elif case == "clashes_with_builtin":
        trained = {"prompted": mapping}
    elif case == "bad_shape":
        trained = {"paper": ["ckpt/s"]}
    elif case == "undeclared_variant":
        tasks = [{"task": "break_character", "variants": ["other"]}]
    elif case == "single_on_per_persona":
        trained = {"paper": "ckpt/s"}
    elif case == "bad_classifier_methods":
        extra = {"classifier": {"kind": "tfidf", "n_prompts": 2, "methods": ["steered"]}}
    elif case == "bad_opponent":
        tasks = [{"task": "coherence", "variants": ["paper"], "opponents": ["base", "nobody"]}]
    elif case == "two_models":
        models = ["charbench/smollm2", "charbench/smollm2-135m"]
    suite = write_suite(root, tasks, trained, **extra)
    log_dir = root / "runs"
    args = ["run", "--suite", str(suite), "--log-dir", str(log_dir), "--dry-run"]
    for model in models:
        args += ["--model", model]
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert expected.format(root=root) in err
    assert len(err.splitlines()) == 1, err
    assert not log_dir.exists()


# -- the plan ---------------------------------------------------------------------------------------------------
@pytest.fixture
def trained_suite(tmp_path, monkeypatch) -> Path:
    """Two personas; `one` is a single sarcastic checkpoint (given through $CKPTS), `paper` one per persona."""
    trained_folder(tmp_path / "ckpts" / "one", "sarcastic", stage="sft", key="abcdef1234567890",
                   planted={"kind": "trait", "strength": 0.5})
    trained_folder(tmp_path / "suites" / "s", "sarcastic")
    trained_folder(tmp_path / "suites" / "r", "remorseful", key="9999990000000000")
    monkeypatch.setenv("CKPTS", str(tmp_path / "ckpts"))
    (tmp_path / "suites").mkdir(exist_ok=True)
    return write_suite(tmp_path / "suites", [
        {"task": "break_character", "variants": ["prompted", "paper"], "args": {"n_prompts": 1}},
        {"task": "reflective_stability", "variants": ["base", "one", "paper"], "args": {"constitution": "sarcastic"}},
        {"task": "coherence", "variants": ["prompted", "one", "paper"], "opponents": ["base", "prompted", "steered"],
         "args": {"n_prompts": 2}},
    ], {"one": "$CKPTS/one", "paper": {"build": "make paper", "checkpoints": {"sarcastic": "s", "remorseful": "r"}}})


def test_plan_runs_trained_checkpoints_per_task_kind(tmp_path, trained_suite, no_model_loading):
    plan = runner.plan_suite(load_suite(str(trained_suite)), ["charbench/smollm2"], tmp_path / "runs")
    runner.validate_plan(plan)
    steps = {s.name.split("/", 1)[1]: s for s in plan.steps}
    s_model = f"charbench/{tmp_path / 'suites' / 's' / 'model'}"
    r_model = f"charbench/{tmp_path / 'suites' / 'r' / 'model'}"
    one_model = f"charbench/{tmp_path / 'ckpts' / 'one' / 'model'}"

    # the classifier is trained on responses of every variant the classifier-needing entries use, trained included
    data = {n for n, s in steps.items() if s.purpose == "classifier-data"}
    assert data == {"persona_responses-paper", "persona_responses-prompted"}
    for name in ("persona_responses-paper", "break_character-paper"):
        step = steps[name]
        assert step.task_args["method"] == "trained"
        assert step.model == runner.ModelSpec("charbench/smollm2"), "the base stays the run's model (neutral turns)"
        assert {p: step.roles[p].model for p in ("sarcastic", "remorseful")} == {"sarcastic": s_model, "remorseful": r_model}
        assert step.metadata[VARIANT_KEY] == "paper-dpo"
    assert steps["break_character-paper"].task_args["classifier"] == str(plan.classifiers["charbench/smollm2"])

    # single-persona tasks: the checkpoint itself is the model under test, method base
    one = steps["reflective_stability-one"]
    assert (one.model.model, one.model.args) == (one_model, {})
    assert one.metadata[VARIANT_KEY] == "sarcastic-full-abcdef"
    assert one.metadata[TRAINED_KEY]["checkpoints"]["sarcastic"]["planted_strength"] == 0.5
    assert steps["reflective_stability-paper"].model.model == s_model

    # coherence: a per-persona trained variant once per (persona x opponent); a single checkpoint for its persona
    coherence = {n: s for n, s in steps.items() if n.startswith("coherence-")}
    assert set(coherence) == {
        *(f"coherence-paper-{p}-vs-{o}" for p in ("sarcastic", "remorseful") for o in ("base", "prompted", "steered")),
        *(f"coherence-one-vs-{o}" for o in ("base", "prompted", "steered")),
        "coherence-prompted-vs-base", "coherence-prompted-vs-steered"}  # prompted against itself measures nothing
    step = coherence["coherence-paper-remorseful-vs-prompted"]
    assert step.model.model == r_model and step.task_args["constitution"] == "remorseful"
    assert step.roles["opponent"] == runner.ModelSpec("charbench/smollm2", {"method": "prompted", "persona": "remorseful"})
    assert step.metadata[POOL_KEY] and step.metadata[OPPONENT_KEY] == "prompted"
    assert coherence["coherence-paper-sarcastic-vs-steered"].metadata[OPPONENT_KEY] == "steered@0.5"
    assert POOL_KEY not in coherence["coherence-one-vs-base"].metadata
    assert coherence["coherence-one-vs-base"].task_args["constitution"] == "sarcastic"

    # one judge for every step, whatever the variant under test
    assert [s.roles["judge"] for s in plan.steps if "judge" in s.roles] == [runner.ModelSpec(JUDGE)] * sum(
        "judge" in s.roles for s in plan.steps)

    text = runner.describe_plan(plan)
    assert "trained variant paper: leaderboard row paper-dpo; build: make paper" in text
    assert "sarcastic: card sarcastic-full-abcdef, stage full, constitution sarcastic, base /base/ckpt" in text
    assert "    row: paper-dpo" in text


def test_a_trained_opponent_and_the_single_opponent_form(tmp_path, trained_suite, no_model_loading):
    suite = load_suite(str(trained_suite))
    suite.tasks = [{"task": "coherence", "variants": ["prompted"], "opponents": ["paper"], "args": {"constitution": "remorseful"}},
                   {"id": "legacy", "task": "coherence", "variants": ["prompted"], "opponent": "steered"}]
    steps = {s.name.split("/", 1)[1]: s for s in runner.plan_suite(suite, ["charbench/smollm2"], tmp_path).steps}
    assert set(steps) == {"coherence-prompted-vs-paper", "legacy-prompted"}  # the old form keeps its step name
    assert steps["coherence-prompted-vs-paper"].roles["opponent"].model == f"charbench/{tmp_path / 'suites' / 'r' / 'model'}"
    assert steps["coherence-prompted-vs-paper"].metadata[OPPONENT_KEY] == "paper-dpo"
    assert steps["legacy-prompted"].roles["opponent"].args == {"method": "steered", "persona": "sarcastic", "steer_coef": 0.5}


def test_classifier_methods_restrict_the_classifier_data(tmp_path, trained_suite, no_model_loading):
    suite = load_suite(str(trained_suite))
    suite.classifier = {**suite.classifier, "methods": ["paper"]}
    plan = runner.plan_suite(suite, ["charbench/smollm2"], tmp_path)
    assert [s.name for s in plan.steps if s.purpose == "classifier-data"] == ["charbench_smollm2/persona_responses-paper"]


def test_suite_files_without_trained_plan_as_before(tmp_path, no_model_loading):
    for name in ("smoke", "standard", "paper"):
        suite = load_suite(name)
        assert suite.trained == {}
        plan = runner.plan_suite(suite, ["charbench/smollm2"], tmp_path, judge=JUDGE)
        assert all(not s.metadata.get(VARIANT_KEY) for s in plan.steps)
        assert [s.name for s in plan.steps if s.task == "coherence"] == ["charbench_smollm2/coherence-prompted"]


def test_a_suite_built_in_code_resolves_relative_paths_from_the_working_folder(tmp_path, monkeypatch, no_model_loading):
    trained_folder(tmp_path / "here", "sarcastic")
    monkeypatch.chdir(tmp_path)
    suite = Suite(name="s", version=1, personas=["sarcastic", "remorseful"], classifier={}, steer_coef=0.5, generate={},
                  tasks=[{"task": "reflective_stability", "variants": ["mine"]}], trained={"mine": "here"})
    [step] = runner.plan_suite(suite, ["charbench/smollm2"], tmp_path / "runs").steps
    assert step.model.model == f"charbench/{tmp_path / 'here' / 'model'}"
    with pytest.raises(CharbenchError, match="base_dir is not a suite field"):
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"name": "x", "base_dir": "/"}))
        load_suite(str(tmp_path / "bad.yaml"))


def test_trained_paths_expand_home_and_charbench_home(tmp_path, monkeypatch):
    from charbench.evals.trained import expand_path

    monkeypatch.delenv("CHARBENCH_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert expand_path("$CHARBENCH_HOME/train/s", None) == tmp_path / "cache" / "charbench" / "train" / "s"
    monkeypatch.setenv("CHARBENCH_HOME", str(tmp_path / "home"))
    assert expand_path("${CHARBENCH_HOME}/s", None) == tmp_path / "home" / "s"
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert expand_path("~/s", tmp_path / "suites") == tmp_path / "user" / "s"
    assert expand_path("s", tmp_path / "suites") == tmp_path / "suites" / "s"


def test_dry_run_lists_trained_variants_with_their_cards(tmp_path, trained_suite, capsys, no_model_loading):
    log_dir = tmp_path / "runs"
    assert main(["run", "--suite", str(trained_suite), "--model", "charbench/smollm2", "--log-dir", str(log_dir),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "trained variant one: leaderboard row sarcastic-full-abcdef" in out
    assert "remorseful: card remorseful-dpo-999999, stage dpo, constitution remorseful, base /base/ckpt" in out
    assert not log_dir.exists()
