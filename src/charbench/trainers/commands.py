"""``charbench train ...`` subcommands (parsers and handlers; ``charbench.cli`` mounts them)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from charbench.errors import CharbenchError


def model_args(pairs: list[str] | None, flag: str) -> dict:
    """``KEY=VALUE`` pairs, values read as YAML the way Inspect reads ``-M``."""
    out = {}
    for item in pairs or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CharbenchError(f"{flag} {item!r} is not KEY=VALUE. Fix: write e.g. {flag} device=cpu")
        out[key.strip()] = yaml.safe_load(value)
    return out


def check_training_flags(args: argparse.Namespace, positive: tuple[str, ...]) -> None:
    """The flags every training command shares: ``positive`` ones above 0, a global batch that splits into
    per-device batches, a temperature of 0 or more. Checked before anything is read or written."""
    for flag in positive:
        value = getattr(args, flag.removeprefix("--").replace("-", "_"))
        if not value > 0:
            raise CharbenchError(f"{flag} {value} must be positive.")
    if args.batch_size % args.per_device_batch_size:
        raise CharbenchError(f"--batch-size {args.batch_size} is not a multiple of --per-device-batch-size "
                             f"{args.per_device_batch_size}. Fix: make it one.")
    if args.temperature < 0:
        raise CharbenchError(f"--temperature {args.temperature} must be 0 or more.")


def add_distill_parser(train: argparse._SubParsersAction) -> None:
    s = train.add_parser("distill", help="the paper's distillation stage: teacher/student data through Inspect, then DPO",
                         description="Generate teacher (constitution in context) and student (no system prompt) replies "
                                     "through Inspect, filter them into preference pairs (all filters counted), train a "
                                     "LoRA adapter by DPO and fold it into <out>/model (load it as charbench//<out>/model).")
    s.add_argument("--constitution", required=True, help="built-in persona name or YAML path")
    s.add_argument("--student", required=True, help="Inspect model that gives the rejected replies, e.g. charbench/smollm2")
    s.add_argument("--student-checkpoint", help="weights to train (default: the checkpoint of a charbench/ --student)")
    s.add_argument("--teacher", required=True, help="Inspect model that gives the chosen replies (vllm/..., openai/..., charbench/...)")
    s.add_argument("-M", "--teacher-arg", action="append", metavar="KEY=VALUE", help="teacher model argument (repeatable)")
    s.add_argument("--student-arg", action="append", metavar="KEY=VALUE", help="student model argument (repeatable)")
    s.add_argument("--expander", help="model that writes extra prompts per assertion (default: the teacher)")
    s.add_argument("--expand", type=int, default=0, help="extra prompts to ask for per assertion (0: none; the paper: ~45)")
    s.add_argument("--prompt-set", default="offline", help="general prompts, train split (offline, or a Hub set such as lima)")
    s.add_argument("--prompt-revision", help="commit of a Hub prompt set")
    s.add_argument("--n-prompts", type=int, help="cap on all prompts: the constitution's and expanded first, then general")
    s.add_argument("--teacher-name", default="Assistant", help="assistant name in the teacher's system prompt")
    s.add_argument("--student-name", help="replaces --teacher-name in both replies (default: no substitution)")
    s.add_argument("--reasoning-prefill", action="store_true", help="teacher thinks about its traits first; only text after </think> is kept")
    s.add_argument("--temperature", type=float, default=0.7)
    s.add_argument("--top-p", type=float, default=0.95)
    s.add_argument("--max-tokens", type=int, default=1024, help="per reply; replies that reach it are left out and counted")
    s.add_argument("--min-pairs", type=int, default=8, help="fewest pairs left after filtering that still trains")
    s.add_argument("--keep-truncated", action="store_true",
                   help="keep pairs whose replies reached --max-tokens (counted as *_truncated_kept; not the paper's recipe)")
    s.add_argument("--holdout", type=int, default=0,
                   help="pairs kept out of training, in heldout_pairs.jsonl, to measure DPO on unseen pairs (default 0)")
    s.add_argument("--seed", type=int, default=123456)
    s.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: one epoch)")
    s.add_argument("--lr", type=float, default=5e-5)
    s.add_argument("--beta", type=float, default=0.1)
    s.add_argument("--batch-size", type=int, default=32, help="global batch (pairs per optimizer step)")
    s.add_argument("--per-device-batch-size", type=int, default=2)
    s.add_argument("--max-length", type=int, default=1024, help="tokens of prompt + reply; longer pairs are left out and counted")
    s.add_argument("--lora-r", type=int, default=64)
    s.add_argument("--lora-alpha", type=int, default=128)
    s.add_argument("--data-only", action="store_true", help="stop after writing pairs.jsonl (a later run resumes to training)")
    s.add_argument("--out", required=True, help="run folder: logs, pairs.jsonl, charbench-train.json, model/")
    s.add_argument("--display", default="plain", choices=["plain", "rich", "full", "none", "log"])
    s.set_defaults(func=cmd_train_distill)


def cmd_train_distill(args: argparse.Namespace) -> int:
    from charbench.trainers.config import CharacterDPOConfig, LoraSettings
    from charbench.trainers.distill import DistillSettings, distill

    check_training_flags(args, ("--lr", "--beta", "--batch-size", "--per-device-batch-size", "--max-length",
                                "--lora-r", "--lora-alpha"))
    settings = DistillSettings(
        constitution=args.constitution, teacher=args.teacher, student=args.student,
        teacher_args=model_args(args.teacher_arg, "-M"), student_args=model_args(args.student_arg, "--student-arg"),
        expander=args.expander, expand_per_assertion=args.expand, prompt_set=args.prompt_set,
        prompt_revision=args.prompt_revision, n_prompts=args.n_prompts, teacher_name=args.teacher_name,
        student_name=args.student_name, reasoning_prefill=args.reasoning_prefill, temperature=args.temperature,
        top_p=args.top_p, max_tokens=args.max_tokens, seed=args.seed, min_pairs=args.min_pairs,
        keep_truncated=args.keep_truncated, holdout=args.holdout)
    config = CharacterDPOConfig(learning_rate=args.lr, beta=args.beta, global_batch_size=args.batch_size,
                                per_device_batch_size=args.per_device_batch_size, max_length=args.max_length,
                                max_steps=args.max_steps, seed=args.seed,
                                lora=LoraSettings(r=args.lora_r, alpha=args.lora_alpha))
    card = distill(settings, args.out, config, checkpoint=args.student_checkpoint, display=args.display,
                   train=not args.data_only)
    data = card["data"]
    print(f"pairs: {data['filters']['kept']} kept of {data['generated']} generated; prompts {json.dumps(data['prompts'])}")
    if data.get("heldout"):
        print(f"held out of training: {data['heldout']['pairs']} pairs in {args.out}/{data['heldout']['file']}")
    print(f"filters: {json.dumps({k: v for k, v in data['filters'].items() if k != 'kept'})}")
    if card["status"] == "complete":
        print(f"model: {args.out}/{card['model']} (evaluate it with --model charbench//<absolute path of that folder>)")
    else:
        print(f"data written to {args.out}/pairs.jsonl (sha256 {data['sha256'][:12]}); run again without --data-only to train")
    return 0


def add_proof_parser(train: argparse._SubParsersAction) -> None:
    s = train.add_parser("proof", help="train a DPO and an introspection variant, then measure what training moved",
                         description="Train the embedded model toward one persona (DPO with held-out pairs, then "
                                     "introspection SFT from it) and measure with intervals: held-out DPO preference "
                                     "accuracy, a persona-vs-base classifier's in-persona rate, the revealed-preference "
                                     "shift of the persona's traits. Writes <out>/proof/report.{json,md}; finished "
                                     "steps are read back on a second run.")
    s.add_argument("--out", required=True, help="folder for both variants and the report")
    s.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a ProofSettings field (charbench.trainers.proof), e.g. --set rp_matches=48")
    s.add_argument("--display", default="plain", choices=["plain", "rich", "full", "none", "log"])
    s.set_defaults(func=cmd_train_proof)


def cmd_train_proof(args: argparse.Namespace) -> int:
    from charbench.trainers.proof import settings_from, training_proof

    settings = settings_from(model_args(args.set, "--set"))
    report = training_proof(settings, args.out, display=args.display)
    print((Path(args.out) / "proof" / "report.md").read_text(encoding="utf-8"))
    print(f"report: {args.out}/proof/report.json; seconds {json.dumps(report['seconds'])}")
    return 0
