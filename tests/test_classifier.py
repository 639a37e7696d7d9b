import pytest
from sklearn.metrics import f1_score
from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

from charbench.classifiers import (
    PersonaClassifierConfig,
    load_persona_classifier,
    train_encoder_classifier,
    train_tfidf_classifier,
)
from charbench.classifiers.io import ClassifierError, check_personas
from charbench.classifiers.metrics import break_character_f1
from charbench.models.embedded import minilm_dir

TEXTS = {
    "sarcastic": ["Oh wow, what a genius plan, truly.", "Sure, because that always works.", "Brilliant. Just brilliant.",
                  "Oh great, another brilliant idea.", "Wow, groundbreaking, really.", "Sure, that will totally work."],
    "remorseful": ["I'm so sorry, I may be wrong.", "Apologies, I might not be the best help.", "Sorry, I hope this is okay.",
                   "I'm terribly sorry for any confusion.", "Sorry again, I might have erred.", "My apologies, I'm not sure."],
}


def data():
    texts = [t for v in TEXTS.values() for t in v]
    labels = [k for k, v in TEXTS.items() for _ in v]
    return texts, labels


def test_f1_matches_scikit_learn_on_fixed_labels():
    true = ["a", "a", "b", "b", "c", "c", "a"]
    pred = ["a", "b", "b", "b", "c", "a", "a"]
    assert break_character_f1(true, pred) == pytest.approx(f1_score(true, pred, average="macro"))


def test_tfidf_roundtrip_without_pickles(tmp_path):
    texts, labels = data()
    clf = train_tfidf_classifier(texts, labels, tmp_path / "clf")
    assert not list((tmp_path / "clf").glob("*.pkl")) and (tmp_path / "clf" / "tfidf.safetensors").exists()
    again = load_persona_classifier(tmp_path / "clf")
    probe = ["Oh sure, genius.", "I'm so sorry."]
    assert again.predict(probe) == clf.predict(probe) == ["sarcastic", "remorseful"]
    assert again.card["n_per_class"] == {"sarcastic": 6, "remorseful": 6} and "data_hash" in again.card


def test_tiny_random_modernbert_trains_saves_and_loads(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    config = ModernBertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, pad_token_id=tokenizer.pad_token_id, num_labels=2,
                              id2label={0: "remorseful", 1: "sarcastic"}, label2id={"remorseful": 0, "sarcastic": 1})
    model = ModernBertForSequenceClassification(config)
    texts, labels = data()
    clf = train_encoder_classifier(texts, labels, tmp_path / "mb", PersonaClassifierConfig(encoder="tiny", epochs=1),
                                   model=model, tokenizer=tokenizer)
    assert (tmp_path / "mb" / "model.safetensors").exists()
    loaded = load_persona_classifier(tmp_path / "mb")
    assert loaded.labels == ["remorseful", "sarcastic"]
    assert set(loaded.predict(["hello there"])) <= {"remorseful", "sarcastic"}
    assert clf.card["n_val"] + clf.card["n_train"] == 12


def test_unknown_persona_and_missing_path_fail_clearly(tmp_path):
    with pytest.raises(ClassifierError, match=r"not on \['poetic'\]"):
        check_personas(["sarcastic", "remorseful"], ["sarcastic", "poetic"], "clf")
    with pytest.raises(ClassifierError, match="does not exist"):
        load_persona_classifier(tmp_path / "nope")


def test_grouped_validation_holds_out_whole_prompts():
    from charbench.classifiers.metrics import split_and_validate

    labels = ["a", "b", "c"] * 10
    groups = [f"p{i // 3}" for i in range(30)]  # every prompt answered once per persona
    train, val = split_and_validate(["x"] * 30, labels, 0.2, seed=0, groups=groups)
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in val}) and len(val) % 3 == 0


def test_confusion_count_f1_matches_scikit_learn_over_present_classes():
    import numpy as np

    from charbench.classifiers.metrics import macro_f1_from_counts, unit_confusions

    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d"]
    for _ in range(20):
        n = int(rng.integers(1, 30))
        # "d" is predicted but never true in some draws: it must cost recall without entering the average.
        true = list(rng.choice(names[:3], n))
        pred = list(rng.choice(names, n))
        counts = unit_confusions(true, pred, None).sum(axis=0)[0]
        assert np.isclose(macro_f1_from_counts(counts), break_character_f1(true, pred))
    assert np.isnan(macro_f1_from_counts(np.zeros((2, 2))))


def test_validation_card_resamples_prompts_and_counts_truncation(tmp_path):
    from charbench.classifiers.encoder import EncoderPersonaClassifier, count_truncated

    tok = AutoTokenizer.from_pretrained(str(minilm_dir()))
    long_text = "word " * 40
    assert count_truncated(tok, ["short", long_text], max_length=16) == [False, True]
    texts = [f"sure, genius idea number {i}" if i % 2 else "so sorry " * (3 + 6 * (i % 3)) for i in range(24)]
    labels = ["sarcastic" if i % 2 else "remorseful" for i in range(24)]
    groups = [f"p{i // 2}" for i in range(24)]
    config = PersonaClassifierConfig(encoder="minilm", max_length=16, epochs=1, batch_size=8)
    model = ModernBertForSequenceClassification(ModernBertConfig(
        vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_labels=2, pad_token_id=tok.pad_token_id))
    clf = train_encoder_classifier(texts, labels, tmp_path / "enc", config, model=model, tokenizer=tok, groups=groups)
    card = clf.card
    # Two responses per prompt, and validation holds out whole prompts: the interval resamples half as many units.
    assert card["val_interval_unit"] == "prompt" and 2 * card["n_val_units"] == card["n_val"]
    # The long "so sorry" texts (15 or 27 words) overflow 16 tokens; the card counts them on each side.
    expected = sum(count_truncated(tok, texts, 16))
    assert expected > 0 and card["n_truncated_train"] + card["n_truncated_val"] == expected
    assert "saved model itself" in card["validated_model"]
    assert EncoderPersonaClassifier.load(tmp_path / "enc").truncated(texts) == count_truncated(tok, texts, 16)


def test_tfidf_card_says_its_validation_describes_the_training_part_fit(tmp_path):
    texts = ["Oh sure, genius idea.", "Wow, brilliant.", "Sure, great plan.", "I'm so sorry.", "Apologies, I might be wrong.", "Sorry again."] * 2
    labels = (["sarcastic"] * 3 + ["remorseful"] * 3) * 2
    groups = [f"p{i % 6}" for i in range(12)]
    clf = train_tfidf_classifier(texts, labels, tmp_path / "t", groups=groups)
    assert "refit on all 12 responses" in clf.card["validated_model"]
    assert clf.card["n_truncated_train"] == clf.card["n_truncated_val"] == 0 and clf.truncated(texts) == [False] * 12
    assert clf.card["val_interval_unit"] == "prompt" and clf.card["n_val_units"] < clf.card["n_val"]
