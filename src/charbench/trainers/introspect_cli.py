"""``charbench train introspect``: parser and handler (``charbench.cli`` mounts it; Inspect loads only on use)."""

from __future__ import annotations

import argparse
import json


def add_introspect_parser(train: argparse._SubParsersAction) -> None:
    s = train.add_parser(
        "introspect", help="the paper's introspection stage: self-reflection and self-interaction data, then SFT",
        description="The distilled model writes self-reflections (the 10 appendix B prompts x N) and self-interactions "
                    "(conversations with a copy of itself) through Inspect; a LoRA adapter is trained on every assistant "
                    "turn and merged exactly into <out>/model (load it as charbench//<out>/model).")
    s.add_argument("--model", required=True, help="Inspect model that writes the data: the distilled model, e.g. "
                   "charbench//abs/run/model, or vllm/... for scale")
    s.add_argument("-M", "--model-arg", action="append", metavar="KEY=VALUE", help="model argument (repeatable)")
    s.add_argument("--checkpoint", help="weights to train (default: the checkpoint of a charbench/ --model)")
    s.add_argument("--constitution", required=True, help="built-in persona name or YAML path")
    s.add_argument("--ablation", default="full", choices=["full", "sr-only", "si-only"],
                   help="which introspection data: both (full), self-reflection only, self-interaction only")
    s.add_argument("--name", default="Assistant", help="the model's name in the system prompts (the paper: its family)")
    s.add_argument("--n-reflection", type=int, default=1000, help="replies per self-reflection prompt (10 prompts)")
    s.add_argument("--n-interaction", type=int, default=2000, help="self-interaction conversations (half free, half leading)")
    s.add_argument("--turns", type=int, default=10, help="turns per self-interaction")
    s.add_argument("--temperature", type=float, default=0.7)
    s.add_argument("--top-p", type=float, default=0.95)
    s.add_argument("--max-tokens", type=int, default=2048, help="per self-reflection reply")
    s.add_argument("--turn-max-tokens", type=int, default=1024, help="per self-interaction turn")
    s.add_argument("--keep-truncated", action="store_true",
                   help="keep replies that used the whole token budget (counted either way; left out by default)")
    s.add_argument("--sft-weight", type=float, default=0.25,
                   help="weight of the SFT adapter in <out>/model: 0.25 the paper's release merge, 1.0 folded whole")
    s.add_argument("--seed", type=int, default=123456)
    s.add_argument("--max-steps", type=int, default=-1, help="optimizer steps (-1: one epoch)")
    s.add_argument("--lr", type=float, default=5e-5)
    s.add_argument("--batch-size", type=int, default=32, help="global batch (conversations per optimizer step)")
    s.add_argument("--per-device-batch-size", type=int, default=2)
    s.add_argument("--max-length", type=int, default=3072, help="tokens per conversation; longer ones are cut and counted")
    s.add_argument("--lora-r", type=int, default=64)
    s.add_argument("--lora-alpha", type=int, default=128)
    s.add_argument("--data-only", action="store_true", help="stop after writing introspection.jsonl")
    s.add_argument("--out", required=True, help="run folder: logs, introspection.jsonl, charbench-train.json, model/")
    s.add_argument("--display", default="plain", choices=["plain", "rich", "full", "none", "log"])
    s.set_defaults(func=cmd_train_introspect)


def cmd_train_introspect(args: argparse.Namespace) -> int:
    from charbench.trainers.commands import check_training_flags, model_args
    from charbench.trainers.config import CharacterSFTConfig, LoraSettings
    from charbench.trainers.introspect import IntrospectSettings, introspect

    check_training_flags(args, ("--lr", "--batch-size", "--max-length", "--per-device-batch-size", "--lora-r",
                                "--lora-alpha"))
    settings = IntrospectSettings(
        constitution=args.constitution, model=args.model, model_args=model_args(args.model_arg, "-M"), name=args.name,
        ablation=args.ablation, n_reflection=args.n_reflection, n_interaction=args.n_interaction, turns=args.turns,
        temperature=args.temperature, top_p=args.top_p, reflection_max_tokens=args.max_tokens,
        interaction_max_tokens=args.turn_max_tokens, keep_truncated=args.keep_truncated, seed=args.seed,
        sft_weight=args.sft_weight)
    config = CharacterSFTConfig(learning_rate=args.lr, global_batch_size=args.batch_size,
                                per_device_batch_size=args.per_device_batch_size, max_length=args.max_length,
                                max_steps=args.max_steps, seed=args.seed,
                                lora=LoraSettings(r=args.lora_r, alpha=args.lora_alpha))
    card = introspect(settings, args.out, config, checkpoint=args.checkpoint, display=args.display,
                      train=not args.data_only)
    data = card["data"]
    print(f"examples: {data['examples']}; counts {json.dumps(data['counts'])}")
    if "sft" in data:
        print(f"sft: {json.dumps(data['sft'])}")
    if card["status"] == "complete":
        print(f"model: {args.out}/{card['model']} ({card['name']}; evaluate it with --model charbench//<absolute path>)")
    else:
        print(f"data written to {args.out}/introspection.jsonl; run again without --data-only to train")
    return 0
