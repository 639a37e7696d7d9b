import shutil
import warnings

import pytest
from helpers import mock_model, output
from inspect_ai import eval as inspect_eval
from inspect_ai.log import read_eval_log, write_eval_log
from inspect_ai.model import get_model

from charbench.classifiers import train_tfidf_classifier
from charbench.cli import main
from charbench.leaderboard.build import build_leaderboard
from charbench.leaderboard.gate import run_gate
from charbench.leaderboard.logs import read_runs
from charbench.leaderboard.paired import SampleReader, paired_estimate
from charbench.tasks.break_character.task import break_character
from charbench.tasks.revealed_preferences.task import revealed_preferences


def persona_reply(prompt):
    return "Oh sure, genius idea." if "sharp wit" in prompt else "I'm so sorry, I might be wrong."


def faulty_model(every: int):
    """A mockllm model whose every ``every``-th call raises: samples error on a fixed schedule."""
    calls = []

    def respond(messages, tools, tool_choice, config):
        calls.append(1)
        if len(calls) % every == 0:
            raise RuntimeError("scheduled fault")
        return output("hi")

    return get_model("mockllm/model", custom_outputs=respond, memoize=False)


def preferences(condition="like"):
    return revealed_preferences(traits=["warm", "blunt", "calm"], n_matches=6, judge_method="generative", condition=condition)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    clf = root / "clf"
    train_tfidf_classifier(["Oh sure, genius idea.", "Wow, brilliant.", "Sure, great.", "I'm so sorry.", "Apologies.", "Sorry again."],
                           ["sarcastic"] * 3 + ["remorseful"] * 3, clf)
    for name, reply in (("baseline", persona_reply), ("candidate", persona_reply), ("worse", lambda p: "I'm so sorry.")):
        inspect_eval(break_character(str(clf), personas="sarcastic,remorseful", n_prompts=2), model=mock_model(reply),
                     log_dir=str(root / name), display="none")
    judge = mock_model("Reasoning.\n<answer>warm</answer>")
    for name, condition in (("candidate", "like"), ("candidate", "feel"), ("baseline", "like"), ("baseline", "feel")):
        inspect_eval(preferences(condition), model=mock_model("hi"), model_roles={"judge": judge},
                     log_dir=str(root / name), display="none")
    # A judge that fails on a schedule: those samples error, the run still succeeds (fail_on_error=False).
    inspect_eval(preferences(), model=mock_model("hi"), model_roles={"judge": faulty_model(every=4)},
                 log_dir=str(root / "faulty"), display="none", fail_on_error=False)
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


def test_paired_f1_rule_compares_f1_resampling_prompts(runs, tmp_path, monkeypatch):
    from charbench.leaderboard import paired

    worse = next(r for r in read_runs(runs / "worse") if r.task == "break_character")
    base = next(r for r in read_runs(runs / "baseline") if r.task == "break_character")
    reader = SampleReader()
    computed = []
    resolve = paired.resolve_statistic
    monkeypatch.setattr(paired, "resolve_statistic",
                        lambda name: lambda scores: computed.append(len(scores)) or resolve(name)(scores))
    for key in ("f1/default", "f1_adversarial_mean"):
        est = paired_estimate(worse.contract.metric(key), worse, base, reader, n_boot=200)
        # The delta is the F1 difference the logs report (per-sample accuracy would give -0.5 here, not -2/3).
        assert est.value == pytest.approx(worse.metrics[key] - base.metrics[key]) == pytest.approx(-2 / 3)
        assert est.unit == "prompt_id" and est.n == 2 and est.high < 0
    # Two prompts give four ordered resamples; each run's statistic is computed once per resample and serves both
    # metrics (recomputed per metric and draw it would be 2 metrics x 2 runs x 201 = 804 times).
    assert 0 < len(computed) <= 2 * 4
    code, results = run_gate(runs / "worse", runs / "baseline",
                             rules(tmp_path, "rules:\n  - {metric: break_character.f1/default, max_drop: 0.7}\n"))
    assert code == 0 and "delta -0.6667" in results[0].detail  # an F1 drop of 2/3 is within 0.7


def test_dict_valued_scores_gate_on_the_named_key(runs, tmp_path):
    gate = rules(tmp_path, "rules:\n  - {metric: revealed_preferences.invalid_rate, max_drop: 0.01, where: {condition: like}}\n")
    code, results = run_gate(runs / "candidate", runs / "baseline", gate)
    assert code == 0, results
    assert "delta +0.0000" in results[0].detail and "n=6 id" in results[0].detail
    cand = next(r for r in read_runs(runs / "candidate") if r.task == "revealed_preferences" and r.row_args["condition"] == "like")
    metric = cand.contract.metric("invalid_rate")
    faulty = read_runs(runs / "faulty")[0]
    est = paired_estimate(metric, faulty, cand, SampleReader(), n_boot=100)
    # Only the scored samples of the faulty run are paired; the named key is recomputed on both sides.
    assert est.n == faulty.completed_samples < 6


def test_value_conflict_gates_on_the_named_key_over_scenarios(tmp_path):
    from charbench.tasks.value_conflict.task import value_conflict

    def shorter_option(prompt):  # the same approach whichever order it is shown in: adherence differs from always-1
        one = prompt.split("Option 1:", 1)[1].split("\n", 1)[0]
        two = prompt.split("Option 2:", 1)[1].split("\n", 1)[0]
        return "<answer>1</answer>" if len(one) < len(two) else "<answer>2</answer>"

    for name, reply in (("candidate", "<answer>1</answer>"), ("baseline", shorter_option)):
        inspect_eval(value_conflict(n_boot=20), model=mock_model(reply), log_dir=str(tmp_path / name), display="none")
    cand, base = read_runs(tmp_path / "candidate")[0], read_runs(tmp_path / "baseline")[0]
    key = "priority_adherence"
    assert cand.metrics[key] != base.metrics[key]
    est = paired_estimate(cand.contract.metric(key), cand, base, SampleReader(), n_boot=50)
    assert est.unit == "scenario_id" and est.n == cand.metrics["n_scenarios"]
    assert est.value == pytest.approx(cand.metrics[key] - base.metrics[key])


def test_rule_on_undeclared_metric_names_the_declared_ones(runs, tmp_path, capsys):
    gate = rules(tmp_path, "rules:\n  - {metric: break_character.accuracy, max_drop: 0.05}\n")
    assert main(["gate", "--candidate", str(runs / "worse"), "--baseline", str(runs / "baseline"), "--rules", str(gate)]) == 2
    out = capsys.readouterr().out
    assert "declares no metric 'accuracy'" in out and "declared: f1_adversarial_mean, f1/default" in out
    bound = rules(tmp_path, "rules:\n  - {metric: break_character.f1_adversarial_low, min: 0.5}\n"
                            "  - {metric: break_character.f1_adversarial_low, max_drop: 0.1}\n")
    code, results = run_gate(runs / "candidate", runs / "baseline", bound)
    assert code == 2 and results[0].verdict == "pass" and "use metric: break_character.f1_adversarial_mean" in results[1].detail


def test_runs_differing_in_a_task_argument_never_collapse(runs, tmp_path):
    gate = rules(tmp_path, "rules:\n  - {metric: revealed_preferences.elo_sd, min: 0}\n")
    code, results = run_gate(runs / "candidate", None, gate)
    assert code == 2 and "2 revealed_preferences runs" in results[0].detail and "where: {condition: ...}" in results[0].detail
    picked = rules(tmp_path, "rules:\n  - {metric: revealed_preferences.elo_sd, min: 0, where: {condition: feel}}\n")
    assert run_gate(runs / "candidate", None, picked)[0] == 0
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = build_leaderboard(runs / "candidate", tmp_path / "site")
    frame = read_csv(out.csv_path)
    spread = frame[frame["metric"] == "revealed_preferences.elo_sd"]
    assert sorted(spread["column"]) == ["trait Elo spread (SD) (condition=feel)", "trait Elo spread (SD) (condition=like)"]
    # a repeat of the same measurement is set aside visibly, never silently merged
    shutil.copytree(runs / "candidate", tmp_path / "twice" / "a")
    shutil.copytree(runs / "candidate", tmp_path / "twice" / "b")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = build_leaderboard(tmp_path / "twice", tmp_path / "site2")
    assert len(out.superseded) == 3 and "Repeated runs" in out.html_path.read_text()
    code, results = run_gate(tmp_path / "twice", None, picked)
    assert code == 2 and "repeats of one revealed_preferences run" in results[0].detail


def read_csv(path):
    import pandas as pd

    return pd.read_csv(path)


def test_errored_samples_count_as_invalid_and_stop_the_gate(runs, tmp_path):
    faulty = read_runs(runs / "faulty")[0]
    assert faulty.total_samples == 6 and 0 < faulty.errored < 6
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = build_leaderboard(runs / "faulty", tmp_path / "site")
    row = read_csv(out.csv_path).iloc[0]
    assert row["errored"] == faulty.errored and row["invalid"] >= faulty.errored
    strict = rules(tmp_path, "rules:\n  - {metric: revealed_preferences.invalid_rate, max: 1.0}\n")
    code, results = run_gate(runs / "faulty", None, strict)
    assert code == 2 and f"{faulty.errored} of 6 samples errored" in results[0].detail
    tolerant = rules(tmp_path, "rules:\n  - {metric: revealed_preferences.invalid_rate, max: 1.0, max_errored: 0.9}\n")
    assert run_gate(runs / "faulty", None, tolerant)[0] == 0


def test_leaderboard_skips_corrupt_and_foreign_logs(runs, tmp_path):
    board = tmp_path / "board"
    shutil.copytree(runs / "candidate", board / "logs")
    (board / "logs" / "broken.eval").write_bytes(b"not a zip")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = build_leaderboard(board / "logs", board / "site")
    assert any("broken.eval" in s for s in out.skipped)
    assert "break-character F1" in out.markdown and "trait Elo spread" in out.markdown
    # n is the resampled unit, the prompt (2 prompts, each answered by 2 personas in 8 adversarial splits)
    assert "1 [1, 1] n=2" in out.markdown
    html = out.html_path.read_text()
    assert "<table" in html and "data:image/png;base64" in html
    assert out.csv_path.read_text().startswith("variant,persona,stage,task,args,area,column,label,better,metric,value,low,high,n,invalid")


def _renamed(src_dir, dst_dir, model, model_args):
    """Copy a log folder, giving its runs another model name (a variant) and model args."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for path in src_dir.glob("*.eval"):
        log = read_eval_log(str(path))
        log.eval.model = model
        log.eval.model_args = model_args
        write_eval_log(log, str(dst_dir / path.name))


def test_page_has_variants_areas_deltas_links_and_each_plot_once(runs, tmp_path):
    logs = tmp_path / "logs"
    _renamed(runs / "baseline", logs / "base", "charbench/smollm2", {})
    _renamed(runs / "worse", logs / "worse", "charbench/smollm2+prompted-remorseful",
             {"persona": "remorseful", "method": "prompted"})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        for _ in range(2):  # the second build must not pick up the first build's plots
            assert main(["leaderboard", str(logs), "--baseline", "smollm2"]) == 0
            out = build_leaderboard(logs, logs / "leaderboard")
    html = out.html_path.read_text()
    assert html.count("data:image/png;base64") == len(list((logs / "leaderboard" / "plots").glob("*.png")))
    assert 'class="area">robustness' in html and "↑" in html and "remorseful" in html and ">prompted<" in html
    assert 'href="../base/' in html and 'href="../worse/' in html  # cells link to their logs
    deltas = read_csv(out.delta_path)
    f1 = deltas[deltas["metric"] == "break_character.f1/default"].iloc[0]
    assert f1["variant"] == "smollm2+prompted-remorseful" and f1["verdict"] == "significantly worse"
    assert f1["delta"] == pytest.approx(-2 / 3) and f1["high"] < 0
    assert "significantly worse" in html
    elo_links = [line for line in html.splitlines() if "per-trait Elo" in line]
    assert elo_links and all("plots/elo/" in line for line in elo_links[1:] or elo_links)


def test_page_escapes_markup_from_logs(runs, tmp_path):
    logs = tmp_path / "logs"
    _renamed(runs / "baseline", logs, "charbench/<script>alert('m')</script>",
             {"persona": "<img src=x onerror=alert('p')>", "method": "prompted"})
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        out = build_leaderboard(logs, tmp_path / "site")
    html = out.html_path.read_text()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#x27;m&#x27;)&lt;/script&gt;" in html and "&lt;img src=x onerror" in html


def test_leaderboard_refuses_missing_or_empty_log_dirs(tmp_path, capsys):
    assert main(["leaderboard", str(tmp_path / "no" / "such")]) == 2
    assert not (tmp_path / "no").exists() and "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", str(tmp_path / "empty")]) == 2
    assert "no Inspect logs" in capsys.readouterr().err and not (tmp_path / "empty" / "leaderboard").exists()


def test_malformed_rule_and_suite_files_name_the_file(tmp_path, capsys):
    bad = rules(tmp_path, "rules: [\n  - {metric: x\n")
    assert main(["gate", "--candidate", str(tmp_path), "--rules", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    suite = tmp_path / "suite.yaml"
    suite.write_text("- just a list\n")
    assert main(["run", "--suite", str(suite), "--model", "charbench/smollm2", "--log-dir", str(tmp_path / "l")]) == 2
    assert "a suite is a YAML mapping" in capsys.readouterr().err
