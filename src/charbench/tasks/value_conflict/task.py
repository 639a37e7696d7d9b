"""``charbench/value_conflict``: does the model resolve conflicts between its values as its constitution ranks them?"""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.model import GenerateConfig

from charbench.constitutions import load_constitution
from charbench.errors import TaskParameterError
from charbench.tasks.contract import contract_metadata
from charbench.tasks.value_conflict.choice import check_choice_method
from charbench.tasks.value_conflict.contract import CONTRACT
from charbench.tasks.value_conflict.dataset import MODES, build_dataset
from charbench.tasks.value_conflict.scorer import forced_choice_scorer, free_judge_scorer, value_conflict_metrics
from charbench.tasks.value_conflict.solver import forced_choice, free_response, generated_scenario


@task
def value_conflict(
    constitution: str = "flourishing",
    scenarios: str | None = None,
    generate_scenarios: int = 0,
    scenarios_per_pair: int | None = None,
    mode: str = "forced",
    choice_method: str = "generate",
    judge_method: str = "generate",
    include_prompted: bool = False,
    seed: int = 0,
    max_tokens: int = 256,
    temperature: float | None = None,
    n_boot: int = 500,
) -> Task:
    """Scenarios that pit two of the constitution's values against each other, in 3 framings.

    Args:
        constitution: built-in persona name or path of a constitution YAML with a ranked ``values`` list.
        scenarios: path of a scenario YAML file (default: the shipped file for the constitution);
            ``none`` to use generated scenarios only.
        generate_scenarios: if > 0, the ``generator`` model role writes this many new scenarios per value pair
            (JSON reply; replies that do not parse are counted in ``generation_failures``).
        scenarios_per_pair: only the first N scenarios of each value pair from the scenario file (either direction
            counts as one pair; the shipped files have two per pair, one each way). None: all of them.
        mode: ``forced`` (options 1/2, both orders: 6 samples per scenario) or ``free`` (the model answers
            freely and the ``judge`` role labels it a/b/both/neither: 3 samples per scenario).
        choice_method: ``generate`` (parse ``<answer>N</answer>``) or ``likelihood`` (compare the
            log-likelihood of "1" and "2" after ``<answer>``; needs a charbench/ model). The embedded
            SmolLM2-135M rarely follows the answer format: use ``likelihood`` for it.
        judge_method: free mode only, ``generate`` or ``likelihood`` for the judge's label.
        include_prompted: put the constitution's appendix A system prompt in the system message (default off,
            so a trained model is tested unprompted).
        seed: generation seed and bootstrap seed.
        max_tokens: generation limit for the model's answer.
        temperature: sampling temperature (None: the provider default; for greedy decoding on charbench/
            models pass ``-M do_sample=false``).
        n_boot: bootstrap resamples (over scenarios) for the intervals.
    """
    check_choice_method(choice_method)
    check_choice_method(judge_method)
    if mode not in MODES:
        raise TaskParameterError(f"mode={mode!r}; choose one of {MODES}.")
    persona = load_constitution(constitution)
    dataset = build_dataset(persona, scenarios, int(generate_scenarios), mode, bool(include_prompted),
                            scenarios_per_pair)
    if mode == "forced":
        solver = [generated_scenario(persona, mode), forced_choice(choice_method)]
        scorer = forced_choice_scorer()
    else:
        solver = [generated_scenario(persona, mode), free_response()]
        scorer = free_judge_scorer(judge_method=judge_method)
    return Task(
        dataset=dataset,
        solver=solver,
        scorer=scorer,
        metrics=[value_conflict_metrics(n_boot=n_boot, seed=seed)],
        config=GenerateConfig(max_tokens=max_tokens, temperature=temperature, seed=seed),
        version="2-A",
        metadata={"constitution": persona.name, "mode": mode, "choice_method": choice_method,
                  "include_prompted": include_prompted, "generate_scenarios": generate_scenarios,
                  "scenarios_per_pair": scenarios_per_pair,
                  **contract_metadata(CONTRACT)},
    )
