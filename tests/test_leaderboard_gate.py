import shutil
import warnings

import pytest
from inspect_ai import eval as inspect_eval

from charbench.cli import main
from charbench.classifiers import train_tfidf_classifier
from charbench.leaderboard.build import build_leaderboard
from charbench.leaderboard.gate import run_gate
from charbench.tasks.break_character.task import break_character
from charbench.tasks.revealed_preferences.task import revealed_preferences
from helpers import mock_model


def persona_reply(prompt):
    return "Oh sure, genius idea." if "sharp wit" in prompt else "I'm so sorry, I might be wrong."


def confused_reply(prompt):
    return "Oh sure, genius idea." if "ADV" not in prompt else "I'm so sorry."


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    clf = root / "clf"
    train_tfidf_classifier(["Oh sure, genius idea.", "Wow, brilliant.", "Sure, great.", "I'm so sorry.", "Apologies.", "Sorry again."],
                           ["sarcastic"] * 3 + ["remorseful"] * 3, clf)
    for name, reply in (("baseline", persona_reply), ("candidate", persona_reply), ("worse", lambda p: "I'm so sorry.")):
        inspect_eval(break_character(str(clf), personas="sarcastic,remorseful", n_prompts=2), model=mock_model(reply),
                     log_dir=str(root / name), display="none")
    inspect_eval(revealed_preferences(traits=["warm", "blunt", "calm"], n_matches=6, judge_method="generative"),
                 model=mock_model("hi"), model_roles={"judge": mock_model("<answer>warm</answer>")},
                 log_dir=str(root / "candidate"), display="none")
    return root


def rules(tmp_path, text):
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    return path


def test_gate_pass_fail_and_missing_metric(runs, tmp_path):
    ok = rules(tmp_path, "rules:\n  - {metric: break_character.f1_adversarial_mean, min: 0.8}\n"
                         "  - {metric: break_character.f1/default, max_drop: 0.05}\n")
    code, results = run_gate(runs / "candidate", runs / "baseline", ok)
    assert code == 0, results
    assert "delta +0.0000" in results[1].detail
    code, results = run_gate(runs / "worse", runs / "baseline", ok)
    assert code == 1 and {r.verdict for r in results} == {"fail"}
    missing = rules(tmp_path, "rules:\n  - {metric: coherence.judge/win_rate, min: 0.5}\n")
    assert main(["gate", "--candidate", str(runs / "candidate"), "--rules", str(missing)]) == 2


def test_leaderboard_skips_corrupt_and_foreign_logs(runs, tmp_path):
    board = tmp_path / "board"
    shutil.copytree(runs / "candidate", board / "logs")
    (board / "logs" / "broken.eval").write_bytes(b"not a zip")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = build_leaderboard(board / "logs", board / "site")
    assert any("broken.eval" in s for s in out.skipped)
    assert "break-character F1" in out.markdown and "trait Elo spread" in out.markdown
    assert "1 [1, 1] n=32" in out.markdown  # 2 personas x 8 adversarial splits x 2 prompts, all right
    html = out.html_path.read_text()
    assert "<table" in html and "data:image/png;base64" in html
    assert out.csv_path.read_text().startswith("variant,task,column,metric,value,low,high,n,invalid,log")


def test_malformed_rule_and_suite_files_name_the_file(tmp_path, capsys):
    bad = rules(tmp_path, "rules: [\n  - {metric: x\n")
    assert main(["gate", "--candidate", str(tmp_path), "--rules", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    suite = tmp_path / "suite.yaml"
    suite.write_text("- just a list\n")
    assert main(["run", "--suite", str(suite), "--model", "charbench/smollm2", "--log-dir", str(tmp_path / "l")]) == 2
    assert "a suite is a YAML mapping" in capsys.readouterr().err
