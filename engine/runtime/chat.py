"""Chat formatting from the GGUF's own Jinja template (the way llama.cpp's server does it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypedDict

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.errors import ModelError


class Message(TypedDict):
    role: str
    content: str


#: Used when a GGUF carries no template: ChatML, which SmolLM and many small models speak.
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class ChatTemplate:
    """Renders messages to a prompt string with the model's template."""

    def __init__(self, template: str | None, bos_token: str = "", eos_token: str = "") -> None:
        self.source = template or CHATML

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        try:
            self._template = env.from_string(self.source)
        except TemplateError as e:
            raise ModelError(f"the model's chat template does not parse: {e}") from e
        self._globals = {"bos_token": bos_token, "eos_token": eos_token, "raise_exception": raise_exception}

    def render(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        return self._template.render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, **self._globals
        )
