"""Mock models for protocol tests (every output carries usage so mockllm never fetches a tokenizer), and a
polling wait for threaded tests."""

import time

from inspect_ai.model import GenerateConfig, ModelAPI, ModelOutput, ModelUsage, get_model, modelapi

from charbench.models.logprobs import ContinuationScore


def output(text: str) -> ModelOutput:
    out = ModelOutput.from_content(model="mockllm/model", content=text)
    out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
    return out


def mock_model(reply):
    """A mockllm model whose reply is ``reply(prompt_text)`` (or a fixed string)."""

    def respond(messages, tools, tool_choice, config):
        text = "\n".join(m.text for m in messages)
        return output(reply(text) if callable(reply) else reply)

    return get_model("mockllm/model", custom_outputs=respond, memoize=False)


@modelapi(name="fakelogprob")
class FakeLogprobAPI(ModelAPI):
    """render() joins the messages; the log-probs are a function of (context, option)."""

    def __init__(self, model_name, base_url=None, api_key=None, config=GenerateConfig(), **model_args):
        super().__init__(model_name, base_url, api_key, [], config)
        self.score = model_args["score"]

    async def generate(self, input, tools, tool_choice, config):
        return ModelOutput.from_content(model=self.model_name, content="")

    def render(self, messages):
        return "\n".join(m.text for m in messages) + "\nassistant:"

    def continuation_logprobs(self, pairs, batch_size=8):
        return [ContinuationScore(self.score(context, cont), 1, False) for context, cont in pairs]

    def next_token_logprobs(self, context, candidates):
        return {c: self.score(context, c) for c in candidates}


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.01)
