"""Turning a job's prompt into tokens: the model's own chat template, or the raw text.

The template comes from the GGUF file (tokenizer.chat_template), so it is rendered in a
sandbox. Its text is tokenised with special tokens recognised, while the user's prompt is
tokenised as plain text: a prompt that contains "<|im_end|>" cannot close the turn early.
"""

from __future__ import annotations

from dataclasses import dataclass

from inference.errors import InvalidJob

_PROMPT_MARK = "\u0000inferchain-prompt\u0000"


@dataclass(frozen=True)
class ChatFrame:
    """The template's text before and after the user's message."""

    before: str
    after: str


def chat_frame(template: str, bos_token: str, eos_token: str) -> ChatFrame:
    """Render a chat template around a mark and split it into the text before and after the prompt."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = _raise_template_error
    try:
        rendered = environment.from_string(template).render(
            messages=[{"role": "user", "content": _PROMPT_MARK}],
            add_generation_prompt=True,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except TemplateError as error:
        raise InvalidJob(f"the model's chat template cannot be rendered: {error}") from None
    if rendered.count(_PROMPT_MARK) != 1:
        raise InvalidJob("the model's chat template does not place the user's message exactly once")
    before, after = rendered.split(_PROMPT_MARK)
    return ChatFrame(before, after)


def _raise_template_error(message: str):
    from jinja2 import TemplateError

    raise TemplateError(message)
