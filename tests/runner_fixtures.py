"""A tiny task and a scheduled-fault model for the runner tests (also run as a subprocess that gets killed).

The model ``scheduled/model`` answers each sample with its own input text. Two faults are driven by the
environment, so a killed process and the process that resumes it present the same model identity to Inspect:

* ``CHARBENCH_TEST_FAIL_EVERY=k``: samples whose number is a multiple of k raise (every attempt);
* ``CHARBENCH_TEST_KILL_AFTER=k``: samples numbered above k wait, then SIGKILL the whole process, so only the
  first k samples can finish.

``CHARBENCH_TEST_CALLS=<file>`` appends the number of every sample the model is asked about to that file.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ModelAPI, ModelOutput, ModelUsage, modelapi
from inspect_ai.scorer import match
from inspect_ai.solver import generate

N_SAMPLES = 10


def _number(messages) -> int:
    found = re.search(r"item (\d+)", "\n".join(m.text for m in messages))
    return int(found.group(1)) if found else 0


@modelapi(name="scheduled")
class ScheduledModelAPI(ModelAPI):
    def __init__(self, model_name: str, base_url=None, api_key=None, api_key_vars=None, config=None, **kwargs):
        super().__init__(model_name=model_name, base_url=base_url, api_key=api_key, api_key_vars=api_key_vars or [],
                         config=config)

    async def generate(self, input, tools, tool_choice, config):  # type: ignore[no-untyped-def]
        number = _number(input)
        fail_every = int(os.environ.get("CHARBENCH_TEST_FAIL_EVERY", "0"))
        kill_after = int(os.environ.get("CHARBENCH_TEST_KILL_AFTER", "0"))
        calls = os.environ.get("CHARBENCH_TEST_CALLS")
        if calls:
            with Path(calls).open("a") as handle:
                handle.write(f"{number}\n")
        if fail_every and number % fail_every == 0:
            raise RuntimeError(f"scheduled failure on item {number}")
        if kill_after and number > kill_after:
            await asyncio.sleep(4)  # lets the finished samples reach Inspect's sample buffer first
            os.kill(os.getpid(), signal.SIGKILL)
        out = ModelOutput.from_content(model="scheduled/model", content=f"item {number}")
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)
        return out


@task
def tiny(n: int = N_SAMPLES) -> Task:
    samples = [Sample(id=i, input=f"Repeat: item {i}", target=f"item {i}") for i in range(1, n + 1)]
    return Task(dataset=MemoryDataset(samples, name="tiny"), solver=generate(), scorer=match(location="any"))


def run_tiny_step(root: str, max_error_rate: float = 0.5):
    """Run the tiny task through the runner's step machinery (lock included) and return its StepResult."""
    from charbench.evals import runner

    step = runner.Step("scheduled_model/tiny-base", "tiny", {}, runner.ModelSpec("scheduled/model"))
    with runner.log_dir_lock(runner.check_log_dir(root)):
        return runner.run_step(step, Path(root), seed=0, display="none", max_error_rate=max_error_rate,
                               retry_on_error=0, task_factory=tiny)

if __name__ == "__main__":
    print(run_tiny_step(sys.argv[1]))
