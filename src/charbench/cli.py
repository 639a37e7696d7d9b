"""The ``charbench`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

from charbench.errors import CharbenchError

# Commands that read only local files. `run` (a suite may name Hub datasets or checkpoints) and `classifier
# train` with a Hub encoder are left to the user's own HF_HUB_OFFLINE setting.
OFFLINE_COMMANDS = ("models", "constitutions", "tasks", "demo", "leaderboard", "gate", "compare-elo", "profile")


def _environment_defaults(args: argparse.Namespace) -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    local_encoder = args.command == "classifier" and (args.kind == "tfidf" or args.encoder == "minilm"
                                                      or Path(args.encoder).expanduser().is_dir())
    if args.command in OFFLINE_COMMANDS or local_encoder:
        # Nothing here needs the Hub; offline mode turns a stray lookup into an immediate error, not a timeout.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


# -- input checks: each ends in one line naming the problem and the fix, before any work starts ------------


def _existing_logs(paths: list[str], what: str, fix: str) -> None:
    for path in paths:
        if not Path(path).expanduser().exists():
            raise CharbenchError(f"{what} {path} does not exist. Fix: {fix}")


def _log_files(folder: str) -> list[Path]:
    root = Path(folder).expanduser()
    return [p for p in root.rglob("*") if p.is_file() and p.suffix in (".eval", ".json")]


def _log_dir_with_logs(folder: str, flag: str) -> None:
    root = Path(folder).expanduser()
    if not root.exists():
        raise CharbenchError(f"log folder {folder} does not exist (nothing was created). Fix: pass {flag} the folder "
                             "given to charbench run --log-dir or inspect eval --log-dir.")
    if not root.is_dir():
        raise CharbenchError(f"{folder} is a file, not a log folder. Fix: pass {flag} the folder that holds the logs.")
    if not _log_files(folder):
        raise CharbenchError(f"log folder {folder} holds no Inspect logs (.eval or .json). Fix: run a suite into it "
                             "first (charbench run --suite smoke --model charbench/smollm2 --log-dir ...), or pass "
                             "the folder that has them.")


def _writable_dir(folder: str | Path, flag: str) -> None:
    """The output folder can be created or written; checked without creating anything."""
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise CharbenchError(f"output path {folder} is a file. Fix: give {flag} a folder (new or existing).")
    ancestor = path
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise CharbenchError(f"cannot write {folder}: {ancestor} is not writable. Fix: give {flag} a folder you can write.")


def _positive(value: float, flag: str) -> None:
    if not value > 0:
        raise CharbenchError(f"{flag} {value} must be positive.")


def cmd_models(args: argparse.Namespace) -> int:
    from charbench.models.embedded import EMBEDDED, minilm_dir, prepare_smollm2

    # Listing verifies every file's hash, so `charbench models` is also the way to check a cache.
    paths = {"smollm2": prepare_smollm2(force=args.force, verify=True), "minilm": minilm_dir()}
    for alias, spec in EMBEDDED.items():
        print(f"{alias:8s} {spec.description}\n         path: {paths[alias]}")
    print("\nUse: inspect eval charbench/<task> --model charbench/smollm2")
    return 0


def cmd_constitutions(args: argparse.Namespace) -> int:
    from charbench.constitutions import builtin_names, load_constitution

    if args.action == "list":
        for name in builtin_names():
            c = load_constitution(name)
            print(f"{name:14s} {c.description}")
        return 0
    if not args.names:
        raise CharbenchError(f"'charbench constitutions {args.action}' needs at least one name or path")
    for name in args.names:
        c = load_constitution(name)
        if args.action == "validate":
            print(f"ok  {c.source}: {len(c.assertions)} assertions, {len(c.prompts)} prompts, {len(c.values)} values")
        else:
            print(f"# {c.name}\n{c.description}\n\nAssertions:")
            print(c.traits_text)
            if c.values:
                print("\nValues (rank 1 = highest):")
                for v in c.values:
                    print(f"  {v.rank}. {v.name}: {v.description}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    import charbench.tasks as tasks

    for name in sorted(tasks.__all__):
        doc = (getattr(tasks, name).__doc__ or "").strip().splitlines()
        print(f"charbench/{name:24s} {doc[0] if doc else ''}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from charbench.evals.engines import apply_engine, parse_engine_args
    from charbench.evals.revisions import (
        check_plan_revisions,
        missing_revisions_note,
        parse_revision_options,
        pin_revisions,
    )
    from charbench.evals.runner import check_log_dir, describe_plan, execute_plan, plan_suite, validate_plan
    from charbench.evals.suites import load_suite

    if not 0 <= args.max_error_rate < 1:
        raise CharbenchError(f"--max-error-rate {args.max_error_rate} must be in [0, 1); 0 fails a step on any error")
    # Everything is checked before the first step, so a bad checkpoint or argument never surfaces hours in.
    suite = load_suite(args.suite)
    if args.max_connections is not None:
        if args.max_connections < 1:
            raise CharbenchError(f"--max-connections {args.max_connections} must be a positive integer")
        suite = dataclasses.replace(suite, max_connections=args.max_connections)
    plan = plan_suite(suite, args.model, args.log_dir, judge=args.judge)
    pin_revisions(plan, parse_revision_options(args.revision))
    apply_engine([spec for step in plan.steps for spec in (step.model, *step.roles.values())], args.engine,
                 parse_engine_args(args.engine_arg))
    validate_plan(plan)
    if args.dry_run:
        print(describe_plan(plan))
        print(missing_revisions_note(plan))
        return 0
    check_plan_revisions(plan)  # a Hub dataset without a fixed revision is refused before the log dir is touched
    check_log_dir(args.log_dir)
    results = execute_plan(plan, args.log_dir, display=args.display, max_error_rate=args.max_error_rate)
    if args.profile:
        _print_profile([r.log for r in results if r.log])
    bad = [r for r in results if r.over_threshold]
    print(f"\n{len(results)} steps, {sum(r.errored for r in results)} errored and "
          f"{sum(r.unscored + r.missing for r in results)} unscored or missing samples in all")
    for r in bad:
        print(f"charbench: step {r.step} has {r.failed_samples}/{r.expected} failed samples (status {r.status}), over "
              f"--max-error-rate {args.max_error_rate}; run the same command again to retry only those samples",
              file=sys.stderr)
    return 1 if bad else 0


def _print_profile(log_paths: list[str]) -> None:
    from charbench.evals.profile import format_profile, profile_logs

    print("\nWhere the time went (seconds, from the logs):\n" + format_profile(profile_logs(log_paths)))


def cmd_profile(args: argparse.Namespace) -> int:
    from charbench.evals.profile import log_paths

    _print_profile(log_paths(args.log_dir))
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from charbench.leaderboard.build import build_leaderboard

    _log_dir_with_logs(args.log_dir, "charbench leaderboard")
    _writable_dir(args.out or Path(args.log_dir) / "leaderboard", "--out")
    out = build_leaderboard(args.log_dir, args.out or Path(args.log_dir) / "leaderboard", baseline=args.baseline)
    print(out.markdown)
    print(f"HTML: {out.html_path}\nCSV: {out.csv_path}\nMarkdown: {out.markdown_path}")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from charbench.leaderboard.gate import format_results, run_gate

    fix = "give the log folder or log file of the run (charbench run --log-dir)"
    _existing_logs([args.candidate], "--candidate", fix)
    if args.baseline:
        _existing_logs([args.baseline], "--baseline", fix)
    _existing_logs([args.rules], "--rules file", "give a gate rules YAML (docs/ci.md has the format)")
    code, results = run_gate(args.candidate, args.baseline, args.rules)
    print(format_results(results))
    print({0: "\nGATE PASSED", 1: "\nGATE FAILED", 2: "\nGATE COULD NOT EVALUATE EVERY RULE"}[code])
    return code


def cmd_classifier(args: argparse.Namespace) -> int:
    from charbench.classifiers import PersonaClassifierConfig, train_encoder_classifier, train_tfidf_classifier
    from charbench.classifiers.data import training_data_from_logs

    _existing_logs(args.logs, "--logs", "give persona_responses logs (inspect eval charbench/persona_responses "
                   "--model charbench/smollm2 -M method=prompted --log-dir runs/train, then --logs runs/train/*.eval)")
    _writable_dir(args.out, "--out")
    _positive(args.epochs, "--epochs")
    _positive(args.lr, "--lr")
    encoder = Path(args.encoder).expanduser()
    if args.kind == "encoder" and args.encoder != "minilm" and not encoder.is_dir() and (
            args.encoder.startswith(("/", ".", "~")) or args.encoder.count("/") != 1):
        raise CharbenchError(f"--encoder {args.encoder} is neither minilm, an existing folder nor a Hub id "
                             "(org/name). Fix: --encoder minilm, or a folder written by save_pretrained.")
    texts, labels, prompt_ids = training_data_from_logs(args.logs)
    config = PersonaClassifierConfig(kind=args.kind, encoder=args.encoder, epochs=args.epochs, learning_rate=args.lr)
    trainer = train_tfidf_classifier if args.kind == "tfidf" else train_encoder_classifier
    clf = trainer(texts, labels, args.out, config, groups=prompt_ids)
    print(json.dumps({k: v for k, v in clf.card.items() if k != "config"}, indent=2))
    return 0


def cmd_compare_elo(args: argparse.Namespace) -> int:
    from charbench.tasks.revealed_preferences.comparison import spearman_between_runs, write_comparison

    _existing_logs([args.log_a, args.log_b, *args.more], "log", "give revealed_preferences log files "
                   "(inspect eval charbench/revealed_preferences ... writes them under --log-dir)")
    _writable_dir(args.out, "--out")
    group = [g.strip() for g in args.group.split(",")] if args.group else None
    summary = write_comparison(args.log_a, args.log_b, args.out, k=args.k, group=group)
    print(json.dumps(summary, indent=2))
    if args.more:
        print(spearman_between_runs([args.log_a, args.log_b, *args.more]).to_string(index=False))
    return 0


def print_examples(log_paths: list[str], per_log: int = 3, width: int = 220) -> None:
    """A few real generations per break-character log: persona, method, split and the start of the response."""
    from inspect_ai.log import read_eval_log

    for path in log_paths:
        log = read_eval_log(path)
        if not log.eval.task.endswith("break_character") or not log.samples:
            continue
        method = log.eval.model  # the model name carries the variant (charbench/smollm2+prompted)
        shown: set[str] = set()
        for sample in log.samples:
            persona = sample.metadata["persona"]
            if persona in shown or sample.metadata["split"] != "default":
                continue
            shown.add(persona)
            text = " ".join((sample.output.completion if sample.output else "").split())
            print(f"[{method} / {persona}] {sample.metadata['prompt'][:70]!r}\n    -> {text[:width]}")
            if len(shown) >= per_log:
                break


def cmd_demo(args: argparse.Namespace) -> int:
    from charbench.evals.runner import run_suite
    from charbench.evals.suites import load_suite
    from charbench.leaderboard.build import build_leaderboard
    from charbench.trainers.demo import build_demo_checkpoints, demo_checkpoint_dirs, with_demo_variant

    if not args.train_only:
        _writable_dir(args.log_dir, "--log-dir")
    started = time.monotonic()
    cards = build_demo_checkpoints(display=args.display)
    folders = demo_checkpoint_dirs()
    for name, card in cards.items():
        print(f"[charbench] trained variant {name}: {folders[name]} (stage {card['stage']})")
    print(f"[charbench] training: {time.monotonic() - started:.0f} s (cached for the next demo)")
    if args.train_only:
        return 0
    suite = with_demo_variant(load_suite("smoke"), folders)
    logs = [r.log for r in run_suite(suite, ["charbench/smollm2"], args.log_dir, display=args.display) if r.log]
    started = time.monotonic()  # the leaderboard is built after the last log closes, so no log can time it
    out = build_leaderboard(args.log_dir, Path(args.log_dir) / "leaderboard")
    leaderboard_seconds = time.monotonic() - started
    print("\nExample generations (embedded SmolLM2-135M, through Inspect):")
    print_examples(logs)
    print("\ncharbench smoke suite on the embedded SmolLM2-135M (exercises every path; not a finding about character training)\n")
    print(out.markdown)
    print(f"Leaderboard page: {out.html_path.resolve()}")
    if args.profile:
        _print_profile(logs)
        print(f"Leaderboard build (after the last step): {leaderboard_seconds:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="charbench", description="Benchmark harness for LLM character training.")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error (also after the command)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("models", help="list the embedded models, prepare them and print their paths")
    s.add_argument("--force", action="store_true", help="convert the embedded chat model again")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("constitutions", help="list, show or validate constitutions")
    s.add_argument("action", choices=["list", "show", "validate"])
    s.add_argument("names", nargs="*", help="built-in names or YAML paths")
    s.set_defaults(func=cmd_constitutions)

    s = sub.add_parser("tasks", help="list the Inspect tasks (inspect eval charbench/<task>)")
    s.set_defaults(func=cmd_tasks)

    s = sub.add_parser("demo", help="run the smoke suite on the embedded model and print the leaderboard")
    s.add_argument("--log-dir", default="charbench-out/demo")
    s.add_argument("--display", default="plain", choices=["plain", "rich", "full", "none", "log"])
    s.add_argument("--profile", action="store_true", help="print each step's wall, model, judge and other time after the run")
    s.add_argument("--train-only", action="store_true", help="only train (or find, cached) the demo's trained variant")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("run", help="run a suite on one or more checkpoints")
    s.add_argument("--suite", required=True)
    s.add_argument("--model", action="append", required=True, help="e.g. charbench/smollm2, charbench//abs/ckpt, vllm/org/name")
    s.add_argument("--log-dir", default="charbench-out/runs")
    s.add_argument("--display", default="rich", choices=["plain", "rich", "full", "none", "log"])
    s.add_argument("--judge", help="judge of every task that has one, the same for every variant (default: the "
                   "suite's judge:, else charbench/smollm2, which may judge its own variants only when named)")
    s.add_argument("--max-error-rate", type=float, default=0.05,
                   help="share of errored/unscored samples above which a step is marked failed (exit 1); all are counted")
    s.add_argument("--max-connections", type=int, help="samples in flight per step (the transformers engine's batch "
                   "size); default: the suite's max_connections, 32 unless it says otherwise")
    s.add_argument("--dry-run", action="store_true", help="list every step, model, judge and dataset; load nothing")
    s.add_argument("--revision", action="append", metavar="REPO=REV", help="commit of a Hub dataset a step reads, e.g. "
                   "allenai/WildChat-1M=<sha> (repeat per dataset; overrides the suite's revisions:)")
    s.add_argument("--engine", default="transformers", choices=["transformers", "vllm"],
                   help="engine of the charbench/ models; with vllm the steered variant stays on transformers (hooks)")
    s.add_argument("--engine-arg", action="append", metavar="KEY=VALUE",
                   help="vLLM engine argument for --engine vllm, e.g. tensor_parallel_size=2 (repeatable)")
    s.add_argument("--profile", action="store_true", help="print each step's wall, model, judge and other time after the run")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("profile", help="per step of a run: wall, model, judge and other time, read from its logs")
    s.add_argument("log_dir")
    s.set_defaults(func=cmd_profile)

    s = sub.add_parser("leaderboard", help="build the leaderboard (HTML, Markdown, CSV) from a folder of logs")
    s.add_argument("log_dir")
    s.add_argument("--out")
    s.add_argument("--baseline", help="variant every other is compared with (default: the only base variant)")
    s.set_defaults(func=cmd_leaderboard)

    s = sub.add_parser("gate", help="check a candidate's logs against rules; exit 0 pass, 1 fail, 2 cannot evaluate")
    s.add_argument("--candidate", required=True)
    s.add_argument("--baseline")
    s.add_argument("--rules", required=True)
    s.set_defaults(func=cmd_gate)

    s = sub.add_parser("classifier", help="train a persona classifier from persona_responses logs")
    s.add_argument("action", choices=["train"])
    s.add_argument("--logs", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--kind", default="encoder", choices=["encoder", "tfidf"])
    s.add_argument("--encoder", default="minilm", help="minilm (embedded), answerdotai/ModernBERT-base, or a folder")
    s.add_argument("--epochs", type=int, default=3)
    s.add_argument("--lr", type=float, default=1e-4)
    s.set_defaults(func=cmd_classifier)

    s = sub.add_parser("compare-elo", help="compare two revealed_preferences runs (per-trait change, spread, plots)")
    s.add_argument("log_a")
    s.add_argument("log_b")
    s.add_argument("more", nargs="*", help="further runs for the Spearman matrix")
    s.add_argument("--out", default="charbench-out/elo-compare")
    s.add_argument("--k", type=int, default=5)
    s.add_argument("--group", help="comma list of traits whose joint shift against the rest is tested (a positive control)")
    s.set_defaults(func=cmd_compare_elo)

    # `charbench train <stage>`: each training stage mounts its own parser from charbench.trainers.
    s = sub.add_parser("train", help="train a character variant (distill: DPO from a teacher)")
    train = s.add_subparsers(dest="train_command", required=True)
    from charbench.trainers.commands import add_distill_parser

    add_distill_parser(train)
    from charbench.trainers.introspect_cli import add_introspect_parser

    add_introspect_parser(train)
    from charbench.trainers.organisms_cli import add_organism_parsers, add_report_parser

    add_organism_parsers(train)
    add_report_parser(sub)
    from charbench.trainers.commands import add_proof_parser

    add_proof_parser(train)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Accepted anywhere on the line, so `charbench leaderboard DIR --debug` works as well as before the command.
    debug = "--debug" in argv
    args = build_parser().parse_args([a for a in argv if a != "--debug"])
    _environment_defaults(args)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("charbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if debug:
            raise
        print(f"charbench: error: {_one_line(exc)}", file=sys.stderr)
        return 2


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (CharbenchError, OSError)):
        return text  # already names the file or the fix
    # Anything else is a failure charbench did not foresee: say so rather than pass it off as a user error.
    return f"{type(exc).__name__}: {text} (unexpected; rerun with --debug for the traceback and report it)"


if __name__ == "__main__":
    sys.exit(main())
