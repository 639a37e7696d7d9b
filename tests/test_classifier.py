import pytest
from sklearn.metrics import f1_score
from transformers import AutoTokenizer, ModernBertConfig, ModernBertForSequenceClassification

from charbench.classifiers import PersonaClassifierConfig, load_persona_classifier, train_encoder_classifier, train_tfidf_classifier
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
