"""charbench profile: per-step wall, model, judge and other time read back from Inspect logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from helpers import mock_model
from inspect_ai import Task
from inspect_ai import eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import get_model
from inspect_ai.scorer import Score, Target, mean, scorer
from inspect_ai.solver import TaskState, generate

from charbench.cli import main
from charbench.evals.profile import format_profile, profile_log, profile_logs, sample_intervals, union_length

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def span(kind: str, sid: str, begin: float, end: float) -> list[SimpleNamespace]:
    return [SimpleNamespace(event="span_begin", type=kind, id=sid, timestamp=at(begin)),
            SimpleNamespace(event="span_end", type=None, id=sid, timestamp=at(end))]


def model_call(begin: float, end: float, role: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(event="model", role=role, timestamp=at(begin), completed=at(end), working_time=end - begin)


def test_union_length_counts_overlaps_once():
    assert union_length([]) == 0.0
    assert union_length([(0, 2), (1, 3), (5, 6)]) == 4.0
    assert union_length([(0, 10), (2, 3)]) == 10.0


def test_solver_and_model_time_is_model_scorer_and_judge_time_is_judge():
    events = [*span("solvers", "s", 1, 4), model_call(1, 3), *span("scorers", "c", 4, 9), model_call(4, 8, "judge2")]
    model, judge, model_calls, judge_calls, first = sample_intervals(events)
    assert union_length(model) == 3.0 and union_length(judge) == 5.0
    assert (model_calls, judge_calls) == (1, 1) and first == at(1).timestamp()


def scripted_log(tmp_path):
    @scorer(metrics=[mean()])
    def judged():
        async def score(state: TaskState, target: Target) -> Score:
            reply = await get_model(role="judge").generate("Is this in character? " + state.output.completion)
            return Score(value=1.0 if "yes" in reply.completion else 0.0)

        return score

    task = Task(dataset=MemoryDataset([Sample(input=f"q{i}") for i in range(4)]), solver=generate(), scorer=judged(),
                name="scripted")
    return inspect_eval(task, model=mock_model("an answer"), model_roles={"judge": mock_model("yes")},
                        log_dir=str(tmp_path / "step"), display="none")[0]


def test_a_mockllm_log_splits_its_wall_time_into_parts_that_add_up(tmp_path):
    log = scripted_log(tmp_path)
    p = profile_log(log)
    assert p.samples == 4 and p.model_calls == 4 and p.judge_calls == 4
    assert p.task == "scripted" and p.model == "mockllm/model"
    assert p.model_time > 0 and p.judge_time > 0 and p.setup >= 0
    parts = p.setup + p.model_time + p.judge_time + p.other
    assert abs(parts - p.wall) < 1e-6
    table = format_profile(profile_logs([log.location]))
    assert "| scripted | mockllm/model | 4 |" in table and "**all 1 steps**" in table


def test_profile_command_prints_the_table_and_names_a_bad_folder(tmp_path, capsys):
    scripted_log(tmp_path)
    assert main(["profile", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| step | model | samples | wall s | setup | model | judge | other | gap before |" in out
    assert main(["profile", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "Fix:" in err
    (tmp_path / "empty").mkdir()
    assert main(["profile", str(tmp_path / "empty")]) == 2
    assert "holds no Inspect logs" in capsys.readouterr().err


def test_a_log_without_any_time_is_left_out_and_an_unfinished_one_is_marked(tmp_path):
    log = scripted_log(tmp_path)
    empty = log.model_copy(deep=True)
    empty.samples, empty.stats.started_at, empty.stats.completed_at = [], "", ""
    assert profile_log(empty) is None
    running = log.model_copy(deep=True)
    running.status = "started"
    assert profile_log(running).step == "scripted (started)"
