"""Task contracts: every task declares one, it survives the trip through a log, and bad declarations fail."""

import pytest
from helpers import mock_model
from inspect_ai import eval as inspect_eval

from charbench import tasks
from charbench.errors import CharbenchError
from charbench.tasks.contract import (
    METADATA_KEY,
    BootstrapOver,
    ContractMetric,
    TaskContract,
    all_contracts,
    contract_for,
    resolve_statistic,
)


def test_every_registered_task_declares_a_contract():
    contracts = all_contracts()
    assert sorted(contracts) == sorted(tasks.__all__)
    for contract in contracts.values():
        assert TaskContract.from_metadata(contract.to_metadata()) == contract
        for m in contract.metrics:
            if isinstance(m.paired, BootstrapOver):
                assert callable(resolve_statistic(m.paired.statistic)), m.paired.statistic


def test_contract_is_recorded_in_the_log(tmp_path):
    task = tasks.revealed_preferences(traits=["warm", "blunt", "calm"], n_matches=6, judge_method="generative")
    log = inspect_eval(task, model=mock_model("hi"), model_roles={"judge": mock_model("<answer>warm</answer>")},
                       log_dir=str(tmp_path), display="none")[0]
    assert log.status == "success", log.error
    recorded = TaskContract.from_metadata(log.eval.metadata[METADATA_KEY])
    assert recorded == contract_for("charbench/revealed_preferences")
    logged = {m for s in log.results.scores for m in s.metrics}
    for m in recorded.metrics:  # every key the contract points at is one the task logs
        assert {k for k in (m.key, m.low, m.high, m.se, m.n, m.invalid, m.invalid_rate) if k} <= logged, m


def test_bad_declarations_and_unknown_metrics_are_named():
    with pytest.raises(CharbenchError, match="area 'vibes'"):
        ContractMetric("x", "x", "vibes")
    with pytest.raises(CharbenchError, match="better='up'"):
        ContractMetric("x", "x", "character", better="up")  # type: ignore[arg-type]
    contract = contract_for("value_conflict")
    with pytest.raises(CharbenchError, match="declared: priority_adherence, kendall_tau"):
        contract.metric("f1")
    with pytest.raises(CharbenchError, match="charbench.<module>"):
        resolve_statistic("os:system")
    with pytest.raises(CharbenchError, match="malformed"):
        TaskContract.from_metadata({"task": "x"})


def test_every_task_folder_is_found_and_registered_without_a_central_list():
    import importlib
    import pkgutil

    from inspect_ai._util.registry import registry_lookup

    import charbench._registry  # noqa: F401  (the Inspect entry point)
    import charbench.tasks as tasks

    folders = [i.name for i in pkgutil.iter_modules(tasks.__path__) if i.ispkg]
    exported = {n for f in folders for n in importlib.import_module(f"charbench.tasks.{f}").__all__}
    assert exported and exported == set(tasks.__all__)
    for name in exported:
        assert registry_lookup("task", f"charbench/{name}") is getattr(tasks, name)
