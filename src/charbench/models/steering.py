"""Activation-steering baseline (the paper's appendix C), with a norm-relative coefficient.

Contrast pairs: for each of ``n_pairs`` user messages we take the last-token residual stream at every
steered layer with the persona system prompt (positive) and without it (negative). Layers are the middle
ones, the 12.5th to 87.5th percentile as in the paper.

Direction: the **mean of the paired differences** (positive minus negative), normalised per layer, as in
persona vectors. Two alternatives were rejected. PCA on the differences (this module's version 1) centres
them first, which subtracts exactly the mean shift that carries the persona and keeps whichever direction
the shift varies along most from prompt to prompt. repeng's ``pca_center`` (the paper's code: rows of
+-d/2 around each pair's midpoint) keeps the shift, but its leading component still follows any
prompt-dependent component of the difference whose spread exceeds the shift, and it needs a sign choice.
The mean difference averages prompt-dependent noise away (its error shrinks with ``n_pairs``) and points
to the positives by construction; ``tests/test_steering.py`` plants a direction to check all three.

Coefficient: the paper used raw constants (0.7, 4.0, 525) tuned by hand per model. Here the vector added
at steered layer l is ``coef * mean_norm_l * v_l / n_steered``: the pushes of all steered layers add up in
the residual stream, so ``coef`` is the *total* push as a fraction of a typical activation norm, and one
setting means roughly the same on a shallow or a deep model. ``bench/steering_sweep.py`` measures the
persona margin and a coherence proxy against ``coef`` on the embedded model (docs/benchmarks.md).

Generation: steered variants generate with repetition penalty 1.1, as the paper's reference code does for
every run (the provider sets it; ``-M repetition_penalty=1.0`` turns it off). The sweep uses the same.

We write the hooks ourselves rather than use ``repeng``: its ``ControlModel`` adds raw-unit vectors and
replaces the decoder layers, and its 0.4.0 release predates transformers 5.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from charbench.constitutions import Constitution
from charbench.paper import persona_system_prompt
from charbench.paths import charbench_home


@dataclass
class SteeringVectors:
    layers: list[int]
    directions: torch.Tensor  # (n_layers, hidden) unit vectors
    mean_norms: torch.Tensor  # (n_layers,)


def decoder_layers(model: Any) -> Any:
    for path in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        obj = model
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
            return obj
        except AttributeError:
            continue
    raise ValueError(f"cannot find the decoder layers of {type(model).__name__} to steer")


def middle_layers(n_layers: int, low: float = 0.125, high: float = 0.875) -> list[int]:
    return list(range(int(low * n_layers), int(high * n_layers)))


def _steering_prompts(n_pairs: int) -> list[str]:
    from charbench.prompts import load_prompt_set

    train = [p.text for p in load_prompt_set("offline", split="train")]
    return ["Please talk about anything."] + train[: max(0, n_pairs - 1)]


def last_token_states(api: Any, texts: list[str], layers: list[int], batch_size: int = 8) -> np.ndarray:
    tok, model = api.tokenizer, api.model
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tok(texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            batch = batch.to(model.device)
            hidden = model(**batch, output_hidden_states=True).hidden_states
            # The last real token under either padding side; hidden_states[l+1] is layer l's output.
            positions = torch.arange(batch["attention_mask"].shape[1], device=model.device)
            last = (batch["attention_mask"] * positions).argmax(dim=1)
            rows = torch.arange(len(last), device=model.device)
            out.append(torch.stack([hidden[l + 1][rows, last, :] for l in layers], dim=1).float().cpu().numpy())
    return np.concatenate(out, axis=0)  # (n, n_layers, hidden)


def contrast_texts(tokenizer: Any, constitution: Constitution, assistant_name: str, n_pairs: int) -> tuple[list[str], list[str]]:
    """Chat-rendered (positive, negative) prompts: the same user message with and without the persona prompt."""
    system = persona_system_prompt(constitution, assistant_name)
    positives, negatives = [], []
    for prompt in _steering_prompts(n_pairs):
        positives.append(tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True))
        negatives.append(tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True))
    return positives, negatives


def steering_directions(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit mean-difference directions and mean negative-state norms per layer.

    ``pos`` and ``neg``: (n_pairs, n_layers, hidden), row i of both from the same user message.
    """
    if pos.shape != neg.shape or pos.ndim != 3:
        raise ValueError(f"paired activations must share one (n_pairs, n_layers, hidden) shape, got {pos.shape} and {neg.shape}")
    if pos.shape[0] < 1:
        raise ValueError("steering needs at least one contrast pair; raise n_pairs")
    mean_diff = (pos.astype(np.float64) - neg.astype(np.float64)).mean(axis=0)
    lengths = np.linalg.norm(mean_diff, axis=1)
    if np.any(lengths == 0):
        flat = [int(j) for j in np.flatnonzero(lengths == 0)]
        raise ValueError(f"the persona prompt leaves layer(s) {flat} unchanged, so there is no direction to steer along; "
                         "check that the persona system prompt reaches the model (chat template with a system role)")
    directions = mean_diff / lengths[:, None]
    norms = np.linalg.norm(neg, axis=2).mean(axis=0)
    return directions, norms


def compute_steering_vectors(api: Any, constitution: Constitution, n_pairs: int = 48) -> SteeringVectors:
    n_layers = len(decoder_layers(api.model))
    layers = middle_layers(n_layers)
    positives, negatives = contrast_texts(api.tokenizer, constitution, getattr(api, "assistant_name", "Assistant"), n_pairs)
    pos = last_token_states(api, positives, layers)
    neg = last_token_states(api, negatives, layers)
    directions, norms = steering_directions(pos, neg)
    return SteeringVectors(layers, torch.tensor(directions, dtype=torch.float32), torch.tensor(norms, dtype=torch.float32))


def persona_steering_vectors(api: Any, constitution: Constitution, n_pairs: int = 48) -> SteeringVectors:
    """Compute or load from cache (keyed by checkpoint, constitution text, pair count and direction method).

    The cache file gets a size and SHA-256 record once complete; a file without a record (an interrupted
    write) is recomputed, and one that no longer matches its record is an error naming the file.
    """
    from charbench.models.integrity import record_file, verified_file

    key = hashlib.sha256(f"{api.checkpoint}|{constitution.traits_text}|{n_pairs}|v2-meandiff".encode()).hexdigest()[:16]
    path = charbench_home() / "steering" / f"{constitution.name}-{key}.safetensors"
    fix = f"delete {path} and its .sha256.json record; charbench recomputes the vectors on the next run"
    if path.exists() and verified_file(path, fix):
        data = load_file(str(path))
        return SteeringVectors(data["layers"].tolist(), data["directions"], data["mean_norms"])
    vectors = compute_steering_vectors(api, constitution, n_pairs)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    save_file({"layers": torch.tensor(vectors.layers), "directions": vectors.directions, "mean_norms": vectors.mean_norms}, str(partial))
    partial.replace(path)
    record_file(path)
    return vectors


def apply_steering(model: Any, vectors: SteeringVectors, coef: float) -> list[Any]:
    """Register forward hooks that add ``coef * mean_norm * direction / n_steered`` to each steered layer's output."""
    layers = decoder_layers(model)
    handles = []
    share = coef / max(1, len(vectors.layers))
    for j, layer_index in enumerate(vectors.layers):
        delta = (share * vectors.mean_norms[j] * vectors.directions[j]).to(next(model.parameters()).device)

        def hook(_module: Any, _inputs: Any, output: Any, delta: torch.Tensor = delta) -> Any:
            if isinstance(output, tuple):
                return (output[0] + delta.to(output[0].dtype), *output[1:])
            return output + delta.to(output.dtype)

        handles.append(layers[layer_index].register_forward_hook(hook))
    return handles


# -- diagnostics: is the vector doing what a persona prompt does? (bench/steering_sweep.py, slow tests) ------------


@contextmanager
def steering(model: Any, vectors: SteeringVectors, coef: float) -> Iterator[None]:
    """Steer ``model`` inside the block only; coefficient 0 leaves it untouched."""
    handles = apply_steering(model, vectors, coef) if coef else []
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def steered_layer_states(model: Any, tokenizer: Any, texts: list[str], vectors: SteeringVectors) -> np.ndarray:
    """Last-token outputs of the steered layers as the next layer receives them (after any steering hook).

    Forward hooks registered here run after the steering hooks, so they see the pushed residual stream;
    ``output_hidden_states`` may be recorded before user hooks and would hide the push.
    """
    layers = decoder_layers(model)
    captured: dict[int, torch.Tensor] = {}
    handles = []
    for j in vectors.layers:
        def grab(_m: Any, _i: Any, output: Any, j: int = j) -> None:
            captured[j] = (output[0] if isinstance(output, tuple) else output).detach()
        handles.append(layers[j].register_forward_hook(grab))
    out = []
    try:
        with torch.inference_mode():
            for text in texts:
                batch = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
                model(**batch)
                out.append(torch.stack([captured[j][0, -1] for j in vectors.layers]).float().cpu().numpy())
    finally:
        for handle in handles:
            handle.remove()
    return np.stack(out)  # (n_texts, n_layers, hidden)


def projections(states: np.ndarray, vectors: SteeringVectors) -> np.ndarray:
    """Per text, the projection on each layer's direction averaged over the steered layers."""
    return np.einsum("nlh,lh->nl", states, vectors.directions.numpy()).mean(axis=1)


def mean_token_logprobs(model: Any, tokenizer: Any, contexts: list[str], continuations: list[str]) -> np.ndarray:
    """Mean log-probability per continuation token given its (chat-rendered) context, one row at a time."""
    out = []
    with torch.inference_mode():
        for context, continuation in zip(contexts, continuations):
            ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
            cont = tokenizer(continuation, add_special_tokens=False)["input_ids"]
            if not cont:
                raise ValueError(f"empty continuation for context ending {context[-40:]!r}; generate longer replies")
            ids = torch.tensor([ctx + cont], device=model.device)
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, len(ctx) - 1 : -1].float(), dim=-1)
            out.append(float(logprobs.gather(1, ids[0, len(ctx):, None]).mean()))
    return np.array(out)


def greedy_replies(model: Any, tokenizer: Any, contexts: list[str], max_new_tokens: int = 48,
                   repetition_penalty: float = 1.1) -> list[str]:
    """Greedy continuations (the paper's code generates with repetition penalty 1.1)."""
    replies = []
    with torch.inference_mode():
        for context in contexts:
            batch = tokenizer(context, return_tensors="pt", add_special_tokens=False).to(model.device)
            ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None,
                                 top_k=None, repetition_penalty=repetition_penalty,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
            replies.append(tokenizer.decode(ids[0, batch["input_ids"].shape[1]:], skip_special_tokens=True))
    return replies


def distinct_ratio(tokens: list[str], n: int = 1) -> float:
    """Share of distinct n-grams among a reply's n-grams: 1 for no repetition, near 0 for a loop."""
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")
