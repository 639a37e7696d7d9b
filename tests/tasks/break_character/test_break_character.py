import pytest
from helpers import mock_model
from inspect_ai import eval as inspect_eval

from charbench.classifiers import train_tfidf_classifier
from charbench.classifiers.data import training_data_from_logs
from charbench.classifiers.io import ClassifierError
from charbench.prompts import load_prompt_set
from charbench.tasks.break_character.dataset import persona_dataset, split_names
from charbench.tasks.break_character.task import break_character, persona_responses
from charbench.tasks.prefill_attack.task import prefill_attack


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


def test_asking_for_more_prompts_than_the_set_has_is_an_error_not_a_smaller_n():
    available = len(load_prompt_set("offline", split="train"))
    assert len(persona_dataset(["sarcastic", "remorseful"], available, "train", ["default"])) == 2 * available
    from charbench.errors import TaskParameterError

    with pytest.raises(TaskParameterError, match=f"n_prompts={available + 1}, but .* only {available} train prompts"):
        persona_dataset(["sarcastic", "remorseful"], available + 1, "train", ["default"])


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
    # The interval unit is the prompt; nothing was cut or empty, and the counts say so.
    assert m["n_prompts"] == 2 and m["truncated"] == 0 and m["empty"] == 0


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
    from helpers import output
    from inspect_ai.model import get_model

    seen = []

    def respond(messages, tools, tool_choice, config):
        seen.append(config.max_tokens)
        return output("Oh sure, genius idea.")

    roles = {p: get_model("mockllm/model", custom_outputs=respond, memoize=False) for p in ("sarcastic", "remorseful")}
    task = break_character(classifier, personas="sarcastic,remorseful", method="trained", n_prompts=1, max_tokens=37)
    log = inspect_eval(task, model=mock_model("unused"), model_roles=roles, display="none")[0]
    assert log.status == "success" and seen and set(seen) == {37}


def prompt_keyed_guesses(seed, n_prompts=8, personas=("sarcastic", "remorseful", "mathematical"), repeats=9):
    """A classifier with no persona signal that keys on the prompt: for each prompt it hands the personas' responses
    a random permutation of the persona names, the same under all ``repeats`` splits (the instruction barely changes
    the text). Every label is predicted equally often, and the expected accuracy and macro-F1 are chance, 1/3."""
    import random

    from charbench.tasks.break_character.scorer import Judged

    rng = random.Random(seed)
    rows = []
    for i in range(n_prompts):
        guesses = rng.sample(personas, len(personas))
        rows += [Judged(f"adv{k + 1}", p, g, f"p{i}") for p, g in zip(personas, guesses) for k in range(repeats)]
    return rows


def test_random_prompt_keyed_classifier_interval_covers_chance_only_when_prompts_are_resampled():
    from charbench.classifiers.metrics import macro_f1_estimate

    covered_by_prompt = covered_by_response = 0
    widths_prompt, widths_response = [], []
    trials = 40
    for seed in range(trials):
        rows = prompt_keyed_guesses(seed, n_prompts=20)
        true, pred, ids = [r.true for r in rows], [r.pred for r in rows], [r.prompt_id for r in rows]
        labels = sorted(set(true))
        by_prompt = macro_f1_estimate(true, pred, labels, groups=ids, n_boot=400, seed=seed)
        by_response = macro_f1_estimate(true, pred, labels, n_boot=400, seed=seed)
        assert by_prompt.n == 20 and by_response.n == len(rows) == 20 * 3 * 9
        assert by_prompt.value == by_response.value
        covered_by_prompt += by_prompt.low <= 1 / 3 <= by_prompt.high
        covered_by_response += by_response.low <= 1 / 3 <= by_response.high
        widths_prompt.append(by_prompt.high - by_prompt.low)
        widths_response.append(by_response.high - by_response.low)
    # The prompt-level interval contains chance about as often as a 95% percentile interval over 20 units can
    # (about 90% in 100 trials); the old response-level one treats 540 responses as independent, is about
    # three times narrower and contains chance in well under two trials of three (about 40%).
    assert covered_by_prompt >= 0.8 * trials, covered_by_prompt
    assert covered_by_response <= 0.6 * trials, covered_by_response
    assert sum(widths_prompt) > 2 * sum(widths_response)


def test_f1_report_resamples_prompts_and_counts_truncated_and_empty():
    from charbench.classifiers.metrics import macro_f1_estimate
    from charbench.tasks.break_character.scorer import Judged, f1_report

    rows = prompt_keyed_guesses(0, n_prompts=6, repeats=8) + [
        Judged("default", p, p, f"p{i}", truncated=(i == 0), empty=(i == 1 and p == "sarcastic"))
        for i in range(6) for p in ("sarcastic", "remorseful", "mathematical")]
    m = f1_report(rows, n_boot=200)
    assert m["n_prompts"] == 6 and m["n"] == 6 * 3 * 9 and m["n_adversarial"] == 6 * 3 * 8 and m["n/default"] == 18
    assert m["truncated"] == 3 and m["empty"] == 1
    # The default split is classified perfectly, so every prompt resample scores 1.
    assert m["f1/default"] == m["f1_low/default"] == m["f1_high/default"] == 1.0
    assert m["f1_adversarial_low"] <= m["f1_adversarial_mean"] <= m["f1_adversarial_high"]
    # The adversarial interval resamples the 6 prompts, not the 144 responses, so it is far wider.
    adversarial = [r for r in rows if r.split != "default"]
    per_response = macro_f1_estimate([r.true for r in adversarial], [r.pred for r in adversarial],
                                     sorted({r.true for r in rows}), n_boot=200)
    assert m["f1_adversarial_high"] - m["f1_adversarial_low"] > 2 * (per_response.high - per_response.low)


def test_metric_refuses_samples_without_a_prompt_id():
    from inspect_ai.scorer import SampleScore, Score

    from charbench.tasks.break_character.scorer import judged_row

    bare = SampleScore(score=Score(value="C", answer="sarcastic"), sample_id="x",
                       sample_metadata={"split": "default", "persona": "sarcastic"})
    with pytest.raises(ClassifierError, match="prompt_id.*prompt id"):
        judged_row(bare)


def test_scorer_counts_responses_the_encoder_reads_only_in_part(tmp_path):
    from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

    from charbench.classifiers import PersonaClassifierConfig, train_encoder_classifier
    from charbench.models.embedded import minilm_dir

    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    model = ModernBertForSequenceClassification(ModernBertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_labels=2, pad_token_id=tok.pad_token_id))
    texts = ["Oh sure, genius idea.", "Wow, brilliant.", "Sure, great plan.", "I'm so sorry.", "Apologies, I was wrong.", "Sorry again."]
    labels = ["sarcastic"] * 3 + ["remorseful"] * 3
    clf = tmp_path / "enc"
    train_encoder_classifier(texts, labels, clf, PersonaClassifierConfig(encoder="tiny", epochs=1, max_length=12),
                             model=model, tokenizer=tok)

    def reply(prompt):
        # Sarcastic replies run far past 12 tokens; remorseful ones fit.
        return "Oh sure, " + "what a truly genius idea, " * 6 if "sharp wit" in prompt else "Sorry."

    log = inspect_eval(break_character(str(clf), personas="sarcastic,remorseful", n_prompts=2),
                       model=mock_model(reply), display="none")[0]
    m = {k: v.value for k, v in log.results.scores[0].metrics.items()}
    # Half of the 2 personas x 9 splits x 2 prompts responses are sarcastic, all of them cut.
    assert m["n"] == 36 and m["truncated"] == 18 and m["empty"] == 0
    assert sum(bool(s.scores["persona_classifier_scorer"].metadata["truncated"]) for s in log.samples) == 18
