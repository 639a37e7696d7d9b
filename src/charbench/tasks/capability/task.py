"""The five capability tasks of the paper's appendix F (log-likelihood accuracy, the paper's shot counts)."""

from __future__ import annotations

from typing import Any

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset
from inspect_ai.scorer import accuracy, stderr

from charbench.tasks.capability.contract import capability_contract
from charbench.tasks.capability.dataset import BENCHMARKS, DEFAULT_SHOT_SELECTION, load_benchmark
from charbench.tasks.capability.scorer import loglikelihood_choice, loglikelihood_only, mc2, norm_accuracy
from charbench.tasks.contract import contract_metadata

# 2: ARC, HellaSwag and WinoGrande take one fixed seeded set of shots for every item by default (shots=fixed);
# version 1 drew them per item (still shots=per_item).
VERSION = "2-A"


def capability_task(
    benchmark: str, source: str, n_shots: int | None, limit: int | None, seed: int, revision: str | None,
    shots: str | None = None, **item_kwargs: Any,
) -> Task:
    spec = BENCHMARKS[benchmark]
    samples, info = load_benchmark(benchmark, source, n_shots, limit, seed, revision, shots, **item_kwargs)
    metrics: list = [accuracy(), stderr()]
    if spec.norm:
        metrics.append(norm_accuracy())
    if benchmark == "truthfulqa_mc":
        metrics.append(mc2())
    name = f"{benchmark}_fixture" if source == "fixtures" else benchmark
    return Task(
        dataset=MemoryDataset(samples, name=name, location=info["dataset"], shuffled=False),
        solver=loglikelihood_only(),
        scorer=loglikelihood_choice(),
        metrics=metrics,
        version=VERSION,
        metadata={**info, **item_kwargs, **contract_metadata(capability_contract(benchmark))},
    )


@task
def truthfulqa_mc(
    source: str = "fixtures", n_shots: int = 0, limit: int | None = None, seed: int = 0, revision: str | None = None,
    qa_primer: bool = True,
) -> Task:
    """TruthfulQA multiple choice, 0-shot: accuracy is mc1 (argmax over mc1 choices), mc2 is secondary.

    Args:
        source: ``fixtures`` (shipped, offline; never a benchmark result) or ``hub`` (truthfulqa/truthful_qa).
        n_shots: must be 0 (TruthfulQA has no few-shot split).
        limit: score only the first ``limit`` items.
        seed: unused here (kept for a uniform interface).
        revision: dataset commit/tag, required with ``source='hub'``.
        qa_primer: put the TruthfulQA paper's fixed six-question QA primer first, as lighteval and the
            harness do in the "0-shot" setting.
    """
    return capability_task("truthfulqa_mc", source, n_shots, limit, seed, revision, qa_primer=qa_primer)


@task
def winogrande(
    source: str = "fixtures", n_shots: int = 5, limit: int | None = None, seed: int = 0, revision: str | None = None,
    shots: str = DEFAULT_SHOT_SELECTION,
) -> Task:
    """WinoGrande (winogrande_xl validation), 5-shot, partial evaluation; accuracy.

    Args:
        shots: ``fixed`` (default): every item gets the same seeded draw of ``n_shots`` examples, so the shared
            few-shot block is computed once by the scorer; ``per_item``: each item draws its own (version 1).
    """
    return capability_task("winogrande", source, n_shots, limit, seed, revision, shots)


@task
def hellaswag(
    source: str = "fixtures", n_shots: int = 10, limit: int | None = None, seed: int = 0, revision: str | None = None,
    shots: str = DEFAULT_SHOT_SELECTION,
) -> Task:
    """HellaSwag (validation), 10-shot; accuracy and acc_norm.

    Args:
        shots: ``fixed`` (default): every item gets the same seeded draw of ``n_shots`` examples, so the shared
            few-shot block is computed once by the scorer; ``per_item``: each item draws its own (version 1).
    """
    return capability_task("hellaswag", source, n_shots, limit, seed, revision, shots)


@task
def arc_challenge(
    source: str = "fixtures", n_shots: int = 25, limit: int | None = None, seed: int = 0, revision: str | None = None,
    shots: str = DEFAULT_SHOT_SELECTION,
) -> Task:
    """ARC-Challenge (test), 25-shot; accuracy and acc_norm.

    Args:
        shots: ``fixed`` (default): every item gets the same seeded draw of ``n_shots`` examples, so the shared
            few-shot block is computed once by the scorer; ``per_item``: each item draws its own (version 1).
    """
    return capability_task("arc_challenge", source, n_shots, limit, seed, revision, shots)


@task
def mmlu(
    source: str = "fixtures", n_shots: int = 5, limit: int | None = None, seed: int = 0, revision: str | None = None,
) -> Task:
    """MMLU (all subjects, test), 5-shot from the subject's dev examples; accuracy pooled over items."""
    return capability_task("mmlu", source, n_shots, limit, seed, revision)
