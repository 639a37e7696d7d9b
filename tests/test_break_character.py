from inspect_ai import eval as inspect_eval

from charbench.classifiers import train_tfidf_classifier
from charbench.classifiers.data import training_data_from_logs
from charbench.classifiers.io import ClassifierError
from charbench.prompts import load_prompt_set
from charbench.tasks.break_character.dataset import persona_dataset, split_names
from charbench.tasks.break_character.task import break_character, persona_responses
from charbench.tasks.prefill_attack.task import prefill_attack
from helpers import mock_model

import pytest


def persona_reply(prompt):
    return "Oh sure, genius idea." if "sharp wit" in prompt else "I'm so sorry, I might be wrong."


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    out = tmp_path_factory.mktemp("clf") / "tfidf"
    texts = ["Oh sure, genius idea.", "Wow, brilliant.", "Sure, great plan.", "I'm so sorry.", "Apologies, I might be wrong.", "Sorry again."]
    labels = ["sarcastic"] * 3 + ["remorseful"] * 3
    train_tfidf_classifier(texts, labels, out)
    return str(out)


def test_offline_prompt_split_is_disjoint_and_large_enough():
    train = {p.text for p in load_prompt_set("offline", "train")}
    evaluation = {p.text for p in load_prompt_set("offline", "eval")}
    assert not train & evaluation and len(train) + len(evaluation) >= 400
    ds = persona_dataset(["sarcastic", "remorseful"], 5, "eval", split_names())
    assert len(ds) == 2 * 9 * 5 and all(s.metadata["prompt"] in evaluation for s in ds)


def test_no_evaluation_prompt_reaches_classifier_training(classifier):
    ok = inspect_eval(persona_responses(personas="sarcastic,remorseful", n_prompts=3), model=mock_model(persona_reply), display="none")[0]
    texts, labels, _ = training_data_from_logs([ok.location])
    assert len(texts) == 6 and sorted(set(labels)) == ["remorseful", "sarcastic"]
    bad = inspect_eval(break_character(classifier, personas="sarcastic,remorseful", n_prompts=1), model=mock_model(persona_reply), display="none")[0]
    with pytest.raises(ClassifierError, match="classifier training takes only training prompts"):
        training_data_from_logs([bad.location])


def test_break_character_reports_per_split_f1_with_intervals(classifier):
    log = inspect_eval(break_character(classifier, personas="sarcastic,remorseful", n_prompts=2), model=mock_model(persona_reply), display="none")[0]
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    assert m["f1/default"] == 1.0 and m["f1_adversarial_mean"] == 1.0 and m["n"] == 2 * 9 * 2
    assert m["f1_low/adv3"] <= m["f1/adv3"] <= m["f1_high/adv3"] and m["f1_persona/sarcastic"] == 1.0


def test_prefill_attack_conversation_shapes(classifier):
    log = inspect_eval(prefill_attack(classifier, personas="sarcastic,remorseful", n_prompts=1), model=mock_model(persona_reply),
                       model_roles={"reference": mock_model("A neutral first answer.")}, display="none")[0]
    roles = [[m.role for m in s.messages] for s in log.samples]
    assert all(r == ["user", "assistant", "user", "assistant"] for r in roles)
    assert all(s.messages[1].text == "A neutral first answer." and s.messages[2].text == "Tell me more." for s in log.samples)
    log = inspect_eval(prefill_attack(classifier, personas="sarcastic,remorseful", n_prompts=1, mode="prefill"),
                       model=mock_model(persona_reply), display="none")[0]
    assert all([m.role for m in s.messages] == ["user", "assistant", "assistant"] for s in log.samples)
    assert all(s.metadata["prefill"] == s.messages[1].text for s in log.samples)


def test_models_fetched_inside_the_solver_get_the_task_generation_settings(classifier):
    from inspect_ai.model import get_model

    from helpers import output

    seen = []

    def respond(messages, tools, tool_choice, config):
        seen.append(config.max_tokens)
        return output("Oh sure, genius idea.")

    roles = {p: get_model("mockllm/model", custom_outputs=respond, memoize=False) for p in ("sarcastic", "remorseful")}
    task = break_character(classifier, personas="sarcastic,remorseful", method="trained", n_prompts=1, max_tokens=37)
    log = inspect_eval(task, model=mock_model("unused"), model_roles=roles, display="none")[0]
    assert log.status == "success" and seen and set(seen) == {37}
