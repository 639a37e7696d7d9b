"""Records to multiple-choice items, fixture and Hub loaders, few-shot prompt assembly.

Everything here is a small pure function on plain inputs except the two loaders. Prompt formats follow
lighteval's ``*_harness`` prompt functions / the lm-evaluation-harness versions used by the Open LLM
Leaderboard v1 (see README.md for the exact strings).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inspect_ai.dataset import Sample

from charbench.errors import CharbenchError, TaskParameterError
from charbench.paths import data_path

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SHOT_SEPARATOR = "\n\n"
SOURCES = ("fixtures", "hub")
# How the few-shot examples are chosen (the ``shots`` task parameter). ``fixed``: one seeded draw shared by every
# item, as lighteval's default selection does; every context then starts with the same few-shot block, which the
# log-likelihood scorer computes once and reuses (docs/benchmarks.md, issue 14). ``per_item``: each item draws its
# own shots (charbench's rule before task version 2). MMLU keeps its per-subject rule and 0-shot runs have none.
SHOT_SELECTIONS = ("fixed", "per_item")
DEFAULT_SHOT_SELECTION = "fixed"

# The fixed six-question "QA primer" of the TruthfulQA paper. lighteval's truthful_qa_multiple_choice and
# the harness put it before every question, also in the "0-shot" setting.
TRUTHFULQA_QA_PRIMER = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain.\n\n"
)


class FixtureError(CharbenchError, ValueError):
    """A data item that cannot be scored (bad gold index, malformed record); the message names it."""


@dataclass(frozen=True)
class MCItem:
    """One multiple-choice item, already in prompt form.

    ``query`` is the text the continuations follow: one string shared by all choices, or one per choice
    (WinoGrande's partial evaluation puts the option in the context). ``solved`` is the item written as a
    worked few-shot example. ``header`` is an instruction put once in front of the shots (MMLU).
    """

    id: str
    query: str | tuple[str, ...]
    continuations: tuple[str, ...]
    gold: int
    solved: str
    header: str = ""
    subject: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def queries(self) -> list[str]:
        if isinstance(self.query, str):
            return [self.query] * len(self.continuations)
        return list(self.query)


# -- ids and checks --------------------------------------------------------------------------------------
def stable_id(prefix: str, *parts: Any) -> str:
    """An id from the item's content, so the same item gets the same id in every run (runs can be paired)."""
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True)
    return f"{prefix}-{hashlib.sha1(payload.encode('utf-8')).hexdigest()[:12]}"


def _where(item_id: str, origin: str) -> str:
    return f"item {item_id!r} in {origin}"


def check_gold(gold: int, n_choices: int, item_id: str, origin: str) -> int:
    if not isinstance(gold, int) or isinstance(gold, bool) or not 0 <= gold < n_choices:
        raise FixtureError(
            f"gold answer index {gold!r} is out of range for {n_choices} choices ({_where(item_id, origin)}). "
            "Fix the record's answer field."
        )
    return gold


def _parse_int(value: Any, field_name: str, item_id: str, origin: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise FixtureError(f"{field_name}={value!r} is not an integer ({_where(item_id, origin)}).") from None


def _require(record: Mapping[str, Any], keys: Iterable[str], item_id: str, origin: str) -> None:
    missing = [k for k in keys if k not in record]
    if missing:
        raise FixtureError(f"missing field(s) {missing} ({_where(item_id, origin)}).")


# -- prompt assembly ---------------------------------------------------------------------------------------
def assemble_context(query: str, shots: Sequence[str] = (), header: str = "") -> str:
    """``header`` + each solved shot followed by a blank line + the query (the lighteval/harness layout)."""
    return header + "".join(f"{shot}{SHOT_SEPARATOR}" for shot in shots) + query


def item_pairs(item: MCItem, shots: Sequence[MCItem] = ()) -> list[tuple[str, str]]:
    """(context, continuation) for each choice of ``item`` after ``shots``."""
    solved = [s.solved for s in shots]
    return [(assemble_context(q, solved, item.header), c) for q, c in zip(item.queries(), item.continuations)]


def hellaswag_preprocess(text: str) -> str:
    """lm-evaluation-harness / lighteval HellaSwag cleaning (WikiHow bracket artifacts)."""
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


# -- record_to_item functions ------------------------------------------------------------------------------
def arc_record_to_item(record: Mapping[str, Any], origin: str = "<record>") -> MCItem:
    """ARC: ``Question: {question}\\nAnswer:`` then `` {choice text}``."""
    item_id = str(record.get("id") or stable_id("arc", record.get("question"), record.get("choices")))
    _require(record, ("question", "choices", "answerKey"), item_id, origin)
    texts, labels = list(record["choices"]["text"]), [str(x) for x in record["choices"]["label"]]
    if len(texts) != len(labels) or len(texts) < 2:
        raise FixtureError(f"choices.text and choices.label must have the same length >= 2 ({_where(item_id, origin)}).")
    key = str(record["answerKey"])
    if key not in labels:
        raise FixtureError(
            f"gold answer answerKey={key!r} is not one of the choice labels {labels}, so the gold index is out of "
            f"range ({_where(item_id, origin)})."
        )
    gold = labels.index(key)
    query = f"Question: {record['question']}\nAnswer:"
    return MCItem(item_id, query, tuple(f" {t}" for t in texts), gold, f"{query} {texts[gold]}")


def hellaswag_record_to_item(record: Mapping[str, Any], origin: str = "<record>") -> MCItem:
    """HellaSwag: ``{activity_label}: {ctx_a} {ctx_b capitalised}`` then `` {ending}`` (cleaned)."""
    item_id = stable_id("hellaswag", record.get("activity_label"), record.get("ctx_a"), record.get("ctx_b"),
                        record.get("endings"))
    _require(record, ("activity_label", "ctx_a", "ctx_b", "endings", "label"), item_id, origin)
    endings = [hellaswag_preprocess(e) for e in record["endings"]]
    gold = check_gold(_parse_int(record["label"], "label", item_id, origin), len(endings), item_id, origin)
    query = hellaswag_preprocess(f"{record['activity_label']}: {record['ctx_a']} {str(record['ctx_b']).capitalize()}")
    return MCItem(item_id, query, tuple(f" {e}" for e in endings), gold, f"{query} {endings[gold]}",
                  extra={"ind": record.get("ind")})


def winogrande_record_to_item(record: Mapping[str, Any], origin: str = "<record>") -> MCItem:
    """WinoGrande partial evaluation: context = sentence up to the blank with the option in it,
    continuation = the rest of the sentence after the blank (identical for both options)."""
    item_id = stable_id("winogrande", record.get("sentence"), record.get("option1"), record.get("option2"))
    _require(record, ("sentence", "option1", "option2", "answer"), item_id, origin)
    sentence = str(record["sentence"])
    if sentence.count("_") != 1:
        raise FixtureError(f"the sentence must contain exactly one '_' blank ({_where(item_id, origin)}).")
    blank = sentence.index("_")
    rest = sentence[blank + 1 :].strip()
    if not rest:
        raise FixtureError(f"nothing follows the blank, so partial scoring has no continuation ({_where(item_id, origin)}).")
    options = [str(record["option1"]), str(record["option2"])]
    gold = check_gold(_parse_int(record["answer"], "answer", item_id, origin) - 1, 2, item_id, origin)
    queries = tuple(sentence[:blank] + option for option in options)
    continuation = f" {rest}"
    return MCItem(item_id, queries, (continuation, continuation), gold, queries[gold] + continuation)


def mmlu_header(subject: str) -> str:
    return f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}.\n\n"


def mmlu_record_to_item(record: Mapping[str, Any], origin: str = "<record>") -> MCItem:
    """MMLU: subject header once, then ``{question}\\nA. ..\\nB. ..\\nC. ..\\nD. ..\\nAnswer:`` and `` A``...``."""
    subject = str(record.get("subject") or "")
    item_id = stable_id(f"mmlu-{subject}" if subject else "mmlu", record.get("question"), record.get("choices"))
    _require(record, ("question", "subject", "choices", "answer"), item_id, origin)
    choices = list(record["choices"])
    if not 2 <= len(choices) <= len(LETTERS):
        raise FixtureError(f"{len(choices)} choices; need 2 to {len(LETTERS)} ({_where(item_id, origin)}).")
    answer = record["answer"]
    if isinstance(answer, str) and answer in LETTERS:
        answer = LETTERS.index(answer)
    gold = check_gold(answer, len(choices), item_id, origin)
    query = f"{record['question']}\n" + "".join(f"{LETTERS[i]}. {c}\n" for i, c in enumerate(choices)) + "Answer:"
    return MCItem(item_id, query, tuple(f" {LETTERS[i]}" for i in range(len(choices))), gold,
                  f"{query} {LETTERS[gold]}", header=mmlu_header(subject), subject=subject)


def truthfulqa_record_to_item(record: Mapping[str, Any], origin: str = "<record>", qa_primer: bool = True) -> MCItem:
    """TruthfulQA MC: [QA primer] ``Q: {question}\\nA:`` then `` {choice}``; mc1 choices are scored for
    accuracy, mc2 choices for the mc2 score (probability mass on the true answers)."""
    item_id = stable_id("truthfulqa", record.get("question"))
    _require(record, ("question", "mc1_targets", "mc2_targets"), item_id, origin)
    mc1, mc2 = record["mc1_targets"], record["mc2_targets"]
    for name, targets in (("mc1_targets", mc1), ("mc2_targets", mc2)):
        if len(targets["choices"]) != len(targets["labels"]) or len(targets["choices"]) < 2:
            raise FixtureError(f"{name}: choices and labels must have the same length >= 2 ({_where(item_id, origin)}).")
    true_mc1 = [i for i, label in enumerate(mc1["labels"]) if int(label) == 1]
    if len(true_mc1) != 1:
        raise FixtureError(
            f"mc1_targets.labels must mark exactly one true answer, found {len(true_mc1)}, so there is no valid gold "
            f"index ({_where(item_id, origin)})."
        )
    labels2 = [int(x) for x in mc2["labels"]]
    if not any(labels2) or all(labels2):
        raise FixtureError(f"mc2_targets.labels need at least one true and one false answer ({_where(item_id, origin)}).")
    gold = check_gold(true_mc1[0], len(mc1["choices"]), item_id, origin)
    query = f"Q: {record['question']}\nA:"
    return MCItem(
        item_id, query, tuple(f" {c}" for c in mc1["choices"]), gold, f"{query} {mc1['choices'][gold]}",
        header=TRUTHFULQA_QA_PRIMER if qa_primer else "",
        extra={"mc2_continuations": [f" {c}" for c in mc2["choices"]], "mc2_labels": labels2},
    )


# -- benchmarks ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Benchmark:
    name: str
    record_to_item: Callable[..., MCItem]
    default_shots: int
    eval_fixture: str
    fewshot_fixture: str | None
    hub_repo: str
    hub_config: str | None
    eval_split: str
    fewshot_split: str | None
    norm: bool  # lighteval/leaderboard also report acc_norm


BENCHMARKS: dict[str, Benchmark] = {
    "truthfulqa_mc": Benchmark("truthfulqa_mc", truthfulqa_record_to_item, 0, "truthfulqa_mc.jsonl", None,
                               "truthfulqa/truthful_qa", "multiple_choice", "validation", None, False),
    "winogrande": Benchmark("winogrande", winogrande_record_to_item, 5, "winogrande_validation.jsonl",
                            "winogrande_train.jsonl", "allenai/winogrande", "winogrande_xl", "validation", "train", False),
    "hellaswag": Benchmark("hellaswag", hellaswag_record_to_item, 10, "hellaswag_validation.jsonl",
                           "hellaswag_train.jsonl", "Rowan/hellaswag", None, "validation", "train", True),
    "arc_challenge": Benchmark("arc_challenge", arc_record_to_item, 25, "arc_challenge_test.jsonl",
                               "arc_challenge_train.jsonl", "allenai/ai2_arc", "ARC-Challenge", "test", "train", True),
    "mmlu": Benchmark("mmlu", mmlu_record_to_item, 5, "mmlu_test.jsonl", "mmlu_dev.jsonl", "cais/mmlu", "all",
                      "test", "dev", False),
}


# -- loaders -------------------------------------------------------------------------------------------------
def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise TaskParameterError(f"data file {path} does not exist.")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise FixtureError(f"{path.name} line {n} is not valid JSON: {exc}") from None
    return rows


def fixture_rows(name: str) -> tuple[list[dict[str, Any]], str]:
    """Rows of a shipped fixture file and the origin string used in error messages."""
    path = data_path("capability", name)
    return read_jsonl(path), f"fixture file {path.name}"


def hub_rows(repo: str, config: str | None, split: str, revision: str | None) -> tuple[list[dict[str, Any]], str]:
    """Rows of a Hub dataset split at a pinned revision (``datasets`` imported only here)."""
    if not revision:
        raise TaskParameterError(
            f"source='hub' needs revision=<commit SHA or tag> of the dataset {repo}: charbench pins no revision "
            "for you, so pass the one you mean to report (e.g. -T revision=<sha>)."
        )
    try:
        import datasets
    except ImportError:
        raise CharbenchError(
            "source='hub' needs the `datasets` package, which is not installed. Fix: pip install 'charbench[hub]' "
            "(or use source='fixtures' offline)."
        ) from None
    args = (repo, config) if config else (repo,)
    ds = datasets.load_dataset(*args, split=split, revision=revision)
    origin = f"{repo}{'/' + config if config else ''} split {split} @ {revision}"
    return [dict(row) for row in ds], origin


def rows_to_items(rows: Sequence[Mapping[str, Any]], to_item: Callable[..., MCItem], origin: str, **kwargs: Any) -> list[MCItem]:
    """Convert rows; ids that repeat (identical content) get ``#2``, ``#3``... in file order."""
    items: list[MCItem] = []
    seen: dict[str, int] = {}
    for row in rows:
        item = to_item(row, origin, **kwargs)
        count = seen.get(item.id, 0) + 1
        seen[item.id] = count
        if count > 1:
            item = replace(item, id=f"{item.id}#{count}")
        items.append(item)
    return items


def load_items(path: str | Path, to_item: Callable[..., MCItem], **kwargs: Any) -> list[MCItem]:
    """Items from any JSONL file in the benchmark's schema (errors name the file)."""
    path = Path(path)
    return rows_to_items(read_jsonl(path), to_item, f"file {path.name}", **kwargs)


# -- few-shot selection ----------------------------------------------------------------------------------------
def check_n_shots(benchmark: str, n_shots: int, pool_size: int, pool_origin: str, paper_shots: int) -> None:
    if n_shots > pool_size:
        raise TaskParameterError(
            f"{benchmark}: n_shots={n_shots} but the few-shot pool ({pool_origin}) has only {pool_size} examples. "
            f"Lower n_shots explicitly (-T n_shots={pool_size} or fewer; the paper uses {paper_shots}) or use a "
            "larger pool."
        )


def sample_shots(pool: Sequence[MCItem], n_shots: int, seed: int, item_id: str) -> list[MCItem]:
    """``n_shots`` examples drawn per item with ``random.Random(f"{seed}:{item_id}")`` (never the item itself):
    the same item gets the same shots in every run, whatever ``limit`` is."""
    if n_shots == 0:
        return []
    candidates = [p for p in pool if p.id != item_id]
    if n_shots > len(candidates):
        raise TaskParameterError(
            f"n_shots={n_shots} but only {len(candidates)} few-shot examples are available for item {item_id!r}; "
            "lower n_shots explicitly."
        )
    return random.Random(f"{seed}:{item_id}").sample(candidates, n_shots)


def mmlu_shots(pool: Sequence[MCItem], n_shots: int, subject: str | None) -> list[MCItem]:
    """The first ``n_shots`` dev examples of the same subject, in dev order (original MMLU / harness)."""
    return [p for p in pool if p.subject == subject][:n_shots]


def mmlu_item_shots(pool: Sequence[MCItem], n_shots: int, item: MCItem) -> list[MCItem]:
    shots = mmlu_shots(pool, n_shots, item.subject)
    if len(shots) < n_shots:
        raise TaskParameterError(
            f"mmlu: n_shots={n_shots} but the dev pool has only {len(shots)} examples for subject "
            f"{item.subject!r}. Lower n_shots explicitly (-T n_shots={len(shots)})."
        )
    return shots


def fixed_shot_order(pool: Sequence[MCItem], seed: int) -> list[MCItem]:
    """The whole pool in one order drawn with ``random.Random(f"{seed}:fixed")``; its head is every item's shots."""
    return random.Random(f"{seed}:fixed").sample(list(pool), len(pool))


def fixed_shots(order: Sequence[MCItem], n_shots: int, item_id: str) -> list[MCItem]:
    """The first ``n_shots`` of ``order``; an item that is one of them gets the next example of ``order`` in its
    place (at the end, so the block before it stays the shared prefix)."""
    if n_shots == 0:
        return []
    shots = [p for p in order[: n_shots + 1] if p.id != item_id][:n_shots]
    if len(shots) < n_shots:
        raise TaskParameterError(
            f"n_shots={n_shots} but only {len(shots)} few-shot examples are available for item {item_id!r}; "
            "lower n_shots explicitly."
        )
    return shots


def resolve_shot_selection(benchmark: str, n_shots: int, shots: str | None) -> str:
    """The rule recorded in the task metadata: ``none`` without shots, ``per_subject`` for MMLU, else ``shots``."""
    if benchmark == "mmlu" and shots is not None:
        raise TaskParameterError(
            f"mmlu takes no shots={shots!r}: it always uses the first n_shots dev examples of the item's subject."
        )
    if shots is not None and shots not in SHOT_SELECTIONS:
        raise TaskParameterError(f"shots={shots!r}; choose one of {SHOT_SELECTIONS}.")
    if n_shots == 0:
        return "none"
    if benchmark == "mmlu":
        return "per_subject"
    return shots or DEFAULT_SHOT_SELECTION


# -- samples ---------------------------------------------------------------------------------------------------
def item_to_sample(item: MCItem, shots: Sequence[MCItem], benchmark: str,
                   note: Mapping[str, Any] | None = None) -> Sample:
    """The item's sample; ``note`` adds sample metadata (how its shots were chosen, when that is unusual)."""
    pairs = item_pairs(item, shots)
    contexts = [c for c, _ in pairs]
    shared = len(set(contexts)) == 1
    metadata: dict[str, Any] = {
        "benchmark": benchmark,
        "gold": item.gold,
        "continuations": list(item.continuations),
        "shot_ids": [s.id for s in shots],
    }
    if not shared:
        metadata["contexts"] = contexts
    if item.subject:
        metadata["subject"] = item.subject
    metadata.update(item.extra)
    metadata.update(note or {})
    return Sample(id=item.id, input=contexts[0], target=LETTERS[item.gold], metadata=metadata)


def build_samples(
    benchmark: str, items: Sequence[MCItem], pool: Sequence[MCItem], n_shots: int, seed: int, selection: str,
) -> list[Sample]:
    """One sample per item with its shots chosen by ``selection`` (see :func:`resolve_shot_selection`)."""
    order = fixed_shot_order(pool, seed) if selection == "fixed" else []
    shared_ids = [p.id for p in order[:n_shots]]
    samples = []
    for item in items:
        if selection == "per_subject":
            shots = mmlu_item_shots(pool, n_shots, item)
        elif selection == "fixed":
            shots = fixed_shots(order, n_shots, item.id)
        else:
            shots = sample_shots(pool, n_shots, seed, item.id)
        # Recorded because this item's context differs from the others' in its last shot.
        note = {"fixed_shot_replaced": {"own_id": item.id, "replacement_id": shots[-1].id}} if item.id in shared_ids else None
        samples.append(item_to_sample(item, shots, benchmark, note))
    return samples


def load_benchmark(
    benchmark: str, source: str = "fixtures", n_shots: int | None = None, limit: int | None = None, seed: int = 0,
    revision: str | None = None, shots: str | None = None, **item_kwargs: Any,
) -> tuple[list[Sample], dict[str, Any]]:
    """Samples for ``benchmark`` and a description of where they came from (for the task metadata).

    ``shots`` is the few-shot selection (``fixed`` or ``per_item``, default ``DEFAULT_SHOT_SELECTION``); MMLU
    takes none (its per-subject rule).
    """
    spec = BENCHMARKS[benchmark]
    n_shots = spec.default_shots if n_shots is None else n_shots
    if not isinstance(n_shots, int) or isinstance(n_shots, bool) or n_shots < 0:
        raise TaskParameterError(f"n_shots must be a non-negative integer, got {n_shots!r}.")
    if source not in SOURCES:
        raise TaskParameterError(f"source={source!r}; choose one of {SOURCES}.")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise TaskParameterError(f"limit must be a positive integer or None, got {limit!r}.")
    selection = resolve_shot_selection(benchmark, n_shots, shots)
    if source == "fixtures":
        if revision is not None:
            raise TaskParameterError("revision= only applies to source='hub'; the fixtures ship with charbench.")
        eval_rows, eval_origin = fixture_rows(spec.eval_fixture)
        pool_rows, pool_origin = fixture_rows(spec.fewshot_fixture) if spec.fewshot_fixture else ([], "none")
    else:
        eval_rows, eval_origin = hub_rows(spec.hub_repo, spec.hub_config, spec.eval_split, revision)
        if spec.fewshot_split and n_shots > 0:
            pool_rows, pool_origin = hub_rows(spec.hub_repo, spec.hub_config, spec.fewshot_split, revision)
        else:
            pool_rows, pool_origin = [], "none"
    if spec.fewshot_fixture is None and n_shots:
        raise TaskParameterError(f"{benchmark} has no few-shot split; n_shots must be 0, got {n_shots}.")
    if benchmark != "mmlu":  # MMLU's pool is checked per subject in build_samples
        check_n_shots(benchmark, n_shots, len(pool_rows), pool_origin, spec.default_shots)
    items = rows_to_items(eval_rows, spec.record_to_item, eval_origin, **item_kwargs)
    pool = rows_to_items(pool_rows, spec.record_to_item, pool_origin, **item_kwargs) if n_shots else []
    if limit is not None:
        items = items[:limit]
    samples = build_samples(benchmark, items, pool, n_shots, seed, selection)
    info = {
        "benchmark": benchmark, "n_shots": n_shots, "shots": selection, "source": source, "seed": seed,
        "revision": revision, "dataset": eval_origin, "fewshot_pool": pool_origin, "n_items": len(samples),
        "fixture": source == "fixtures",
    }
    if selection == "fixed":
        info["fixed_shot_ids"] = [p.id for p in fixed_shot_order(pool, seed)[:n_shots]]
        info["fixed_shot_replaced"] = sum(1 for s in samples if "fixed_shot_replaced" in (s.metadata or {}))
    return samples, info
