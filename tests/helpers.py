"""Mock models for protocol tests: every output carries usage so mockllm never fetches a tokenizer."""

from inspect_ai.model import ModelOutput, ModelUsage, get_model


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
