"""``charbench train organism(s)`` and ``charbench organisms report`` (``charbench.cli`` mounts them; Inspect and
torch load only on use)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DEFAULT_KINDS = "opening,signoff,archaic"
DEFAULT_STRENGTHS = "0,0.5,1"


def _shared_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument("--model", default="charbench/smollm2", help="Inspect model that writes the replies (and whose "
                   "weights are trained when it is a charbench/ model)")
    s.add_argument("-M", "--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    s.add_argument("--checkpoint", help="weights to train (default: the checkpoint of a charbench/ --model)")
    s.add_argument("--n-prompts", type=int, default=32, help="training prompts (offline set, train split)")
    s.add_argument("--max-tokens", type=int, default=64, help="per reply (cut replies are kept and counted)")
    s.add_argument("--temperature", type=float, default=0.7)
    s.add_argument("--seed", type=int, default=123456, help="prompt sample, which replies are transformed, training")
    s.add_argument("--epochs", type=float, default=2.0)
    s.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: --epochs)")
    s.add_argument("--lr", type=float, default=1e-3)
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--per-device-batch-size", type=int, default=4)
    s.add_argument("--lora-r", type=int, default=16)
    s.add_argument("--lora-alpha", type=int, default=32)
    s.add_argument("--display", default="plain", choices=["plain", "rich", "full", "none", "log"])


def add_organism_parsers(train: argparse._SubParsersAction) -> None:
    s = train.add_parser(
        "organism", help="a planted control: the model fine-tuned on its own replies, a known share transformed",
        description="The model answers training prompts through Inspect (shared by all organisms); a share --strength "
                    "of the replies gets the kind's fixed transformation; LoRA SFT folded into <out>/model. A planted "
                    "control for checking the harness, not character training.")
    s.add_argument("--kind", required=True, help=f"planted behaviour: one of {DEFAULT_KINDS}")
    s.add_argument("--strength", type=float, required=True, help="share of training replies transformed (0: null)")
    s.add_argument("--out", required=True, help="run folder: organism.jsonl, charbench-train.json, model/")
    s.add_argument("--responses", help="folder of the shared replies (default: <out>/../responses)")
    _shared_arguments(s)
    s.set_defaults(func=cmd_train_organism)

    s = train.add_parser(
        "organisms", help="every organism kind at every strength (cached: finished ones are not retrained)",
        description="Builds <out>/<kind>@<strength> for each kind and strength, sharing <out>/responses.")
    s.add_argument("--kinds", default=DEFAULT_KINDS)
    s.add_argument("--strengths", default=DEFAULT_STRENGTHS)
    s.add_argument("--out", help="folder of the organisms (default: $CHARBENCH_HOME/organisms)")
    _shared_arguments(s)
    s.set_defaults(func=cmd_train_organisms)


def add_report_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("organisms", help="known-answer check: do the detectors find the planted organisms?")
    s.add_argument("action", choices=["report"])
    s.add_argument("--organisms", help="folder built by charbench train organisms (default: $CHARBENCH_HOME/organisms)")
    s.add_argument("--out", required=True, help="folder for the evaluation logs, report.json, report.md and the plot")
    s.add_argument("--n-prompts", type=int, default=40, help="held-out evaluation prompts (offline set, eval split)")
    s.add_argument("--max-tokens", type=int, default=64)
    s.add_argument("--n-boot", type=int, default=1000)
    s.add_argument("--suite-logs", help="log folder of charbench run --suite organisms: adds F1 per split and strength")
    s.add_argument("--display", default="plain", choices=["plain", "rich", "full", "none", "log"])
    s.set_defaults(func=cmd_organisms_report)


def _settings(args: argparse.Namespace):
    from charbench.trainers.commands import check_training_flags, model_args
    from charbench.trainers.config import LoraSettings
    from charbench.trainers.organisms import ResponseSettings, organism_sft_config

    check_training_flags(args, ("--lr", "--batch-size", "--epochs", "--per-device-batch-size", "--lora-r",
                                "--lora-alpha"))
    responses = ResponseSettings(model=args.model, model_args=model_args(args.model_arg, "-M"), n_prompts=args.n_prompts,
                                 max_tokens=args.max_tokens, temperature=args.temperature, seed=args.seed)
    config = organism_sft_config(learning_rate=args.lr, global_batch_size=args.batch_size, epochs=args.epochs,
                                 per_device_batch_size=args.per_device_batch_size, max_steps=args.max_steps,
                                 seed=args.seed, lora=LoraSettings(r=args.lora_r, alpha=args.lora_alpha))
    return responses, config


def _print_card(card: dict, out: str) -> None:
    planted = card["data"]["planted"]
    print(f"{card['name']}: {planted['transformed']} of {planted['responses']} training replies transformed "
          f"({planted['transformed_unchanged']} unchanged by the rule), {planted['marked']} carry the marker; "
          f"model {out}/{card['model']}")


def cmd_train_organism(args: argparse.Namespace) -> int:
    from charbench.trainers.organisms import build_organism

    responses, config = _settings(args)
    card = build_organism(args.kind, args.strength, args.out, responses, args.responses, config,
                          checkpoint=args.checkpoint, display=args.display)
    _print_card(card, args.out)
    print(f"responses: {json.dumps(card['data']['responses'])}")
    return 0


def _default_root() -> str:
    from charbench.paths import charbench_home

    return str(charbench_home() / "organisms")


def cmd_train_organisms(args: argparse.Namespace) -> int:
    from charbench.trainers.organisms import build_organisms, organism_folder, parse_strengths

    responses, config = _settings(args)
    root = args.out or _default_root()
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    strengths = parse_strengths(args.strengths)
    cards = build_organisms(kinds, strengths, root, responses=responses, config=config, checkpoint=args.checkpoint,
                            display=args.display)
    for card in cards:
        planted = card["planted"]
        _print_card(card, str(organism_folder(Path(root), planted["kind"], planted["strength"])))
    return 0


def cmd_organisms_report(args: argparse.Namespace) -> int:
    from charbench.trainers.organism_report import known_answer_report

    report = known_answer_report(args.organisms or _default_root(), args.out, n_prompts=args.n_prompts,
                                 max_tokens=args.max_tokens, n_boot=args.n_boot, display=args.display,
                                 suite_logs=args.suite_logs)
    print(report["markdown"])
    return 0
