"""Prompt templates: how a query becomes the text the model continues, and where sampling stops.

A model answers best in the format it was trained on, so the fixed strings below are copied
exactly from their sources (cited next to each). `chat` instead uses the model's own chat
template, read from its tokenizer.

| name           | for                                              | answer format            |
|----------------|--------------------------------------------------|--------------------------|
| `alpaca`       | the DART-Math models (trained and evaluated so)  | "The answer is: X"       |
| `deepseekmath` | DeepSeekMath-7B-RL/-Instruct, DART-Math's synthesis model | `\\boxed{X}`    |
| `qwen-boxed`   | Qwen2.5-Math-Instruct (its CoT system prompt)    | `\\boxed{X}`             |
| `chat`         | any model with a chat template (the embedded default) | as the model likes  |

Stop strings end a sample where a model trained on these formats would start a new turn
(a new "### Instruction:", "User:", ...). None of them can occur inside a final answer line,
so a stop never cuts an answer off; vLLM also stops at the model's own end-of-sequence token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dartmath.errors import ConfigError

# `chat` only: what joins the query and the configured instruction, as in DeepSeekMath's and
# Qwen's "{question}\nPlease reason step by step, ..." prompts.
INSTRUCTION_SEP = "\n"


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt format: fixed text around the query, or the model's chat template.

    Plain templates render `prefix + query + suffix`; `suffix` ends exactly where the response
    begins. `stop` holds the template's own stop strings (the run config may add more).
    """

    name: str
    stop: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""
    use_chat_template: bool = False
    instruction: str | None = None  # chat only: appended to the query
    source: str = ""  # where the strings come from

    def fingerprint(self) -> str:
        """A short hash of the fixed text and stops: a run directory records it, so that a run is
        never resumed with a template whose text has changed since (`chat`: the model's own
        chat template, which the model fixes)."""
        parts = [
            self.prefix,
            self.suffix,
            list(self.stop),
            self.use_chat_template,
            self.instruction,
        ]
        return hashlib.sha256(json.dumps(parts).encode("utf-8")).hexdigest()[:16]

    def user_message(self, query: str) -> str:
        """The user turn of a chat prompt: the query, then the instruction if there is one."""
        if self.instruction:
            return f"{query}{INSTRUCTION_SEP}{self.instruction}"
        return query

    def render(self, query: str, tokenizer: Any = None) -> str:
        """The prompt text for `query`. Deterministic: the same query (and tokenizer) always
        gives the same text. `chat` needs the model's tokenizer; the others ignore it."""
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        if not self.use_chat_template:
            return f"{self.prefix}{query}{self.suffix}"
        return _apply_chat_template(self.user_message(query), tokenizer)


def _apply_chat_template(content: str, tokenizer: Any) -> str:
    if tokenizer is None:
        raise ValueError(
            "prompt template 'chat' uses the model's own chat template and needs its tokenizer"
        )
    if not getattr(tokenizer, "chat_template", None):
        model = getattr(tokenizer, "name_or_path", None) or "this model"
        raise ConfigError(
            f"prompt template 'chat': the tokenizer of {model} has no chat template; "
            f"use a plain template ({', '.join(n for n in TEMPLATES if n != 'chat')}) "
            "or a model that has one"
        )
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    if not isinstance(text, str):  # pragma: no cover - a tokenizer that ignores tokenize=False
        raise ValueError(f"prompt template 'chat': the chat template gave {type(text).__name__}")
    return text


# DART-Math's models: hkust-nlp/dart-math `dart_math/utils.py`, PROMPT_TEMPLATE_ID2DICT["alpaca"],
# checked at 6d06e7451769f0c43e287099af069db12a30fa84: sys_prompt + "### Instruction:\n" + query +
# "\n\n" + "### Response:\n". `make_full_prompt` is sys_prompt + `make_prefix_prompt`, which trims
# trailing spaces only (`.rstrip(" ")`), so the newline stays; training (`dart_math/train.py`:
# make_full_prompt(query), then response + EOS) and `Generator.gen` (`dart_math/gen.py` at the
# same commit, which passes the prompt on unchanged) both use this text. Earlier code ended it at
# "### Response:": utils.py trimmed all whitespace (`.rstrip()`, still so at
# b19168c513c755033573357362cd8bea9a02284f) and gen.py stripped the whole prompt (still so at
# a6647ea7e04c1d8c0e6b02a679d116de7c04f43d, August 2024).
# Stops: `pipeline/gen.py` at 82377fc66af5c1c76bf3d8e40175cd21772fa660 sends
# [query_prompt.strip(), resp_prompt.strip()].
ALPACA = PromptTemplate(
    name="alpaca",
    prefix=(
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n"
    ),
    suffix="\n\n### Response:\n",
    stop=("### Instruction:", "### Response:"),
    source="hkust-nlp/dart-math dart_math/utils.py@6d06e74; stops: pipeline/gen.py@82377fc",
)

# DART-Math's synthesis prompt for DeepSeekMath-7B-RL: hkust-nlp/dart-math `dart_math/utils.py`
# at 6d06e7451769f0c43e287099af069db12a30fa84, PROMPT_TEMPLATE_ID2DICT["deepseekmath"]: "User: " +
# query + "\nPlease reason step by step, and put your final answer within \\boxed{}.\n\n" +
# "Assistant: "; `.rstrip(" ")` drops the final space, so the prompt ends "Assistant:" (the
# older `.rstrip()` and whole-prompt `.strip()` gave the same ending). The README's synthesis
# command selects it (`--prompt_template "deepseekmath"`); it is the deepseek-math-7b-rl model
# card's chain-of-thought prompt in DeepSeek's "User: ...\n\nAssistant:" layout, less the BOS
# token that tokenization adds. Stops: `pipeline/gen.py` at
# 82377fc66af5c1c76bf3d8e40175cd21772fa660, as for alpaca.
DEEPSEEKMATH = PromptTemplate(
    name="deepseekmath",
    prefix="User: ",
    suffix="\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:",
    stop=("User:", "Assistant:"),
    source="hkust-nlp/dart-math dart_math/utils.py@6d06e74; stops: pipeline/gen.py@82377fc",
)

# Qwen2.5-Math-Instruct's chain-of-thought format: the "CoT" system message of QwenLM/Qwen2.5-Math
# `README.md` at 25a9bc84bc4c43bcc499c4bec9ab14a0983d3852, in the ChatML layout its tokenizer's
# chat template gives (the README's evaluation runs PROMPT_TYPE="qwen25-math-cot").
# Not the older "qwen-boxed" of `evaluation/utils.py` (615096eceb14e653ba791d862a21b326a1d26e12:
# system "You are a helpful assistant.", instruction after the question). Stops: the stop_words
# of `evaluation/math_eval.py` at ab5097e42776099b57d59fe8541ce67e98d2b54a.
QWEN_BOXED = PromptTemplate(
    name="qwen-boxed",
    prefix=(
        "<|im_start|>system\n"
        "Please reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\n"
    ),
    suffix="<|im_end|>\n<|im_start|>assistant\n",
    stop=("</s>", "<|im_end|>", "<|endoftext|>"),
    source="QwenLM/Qwen2.5-Math README.md@25a9bc8 (CoT); stops: evaluation/math_eval.py@ab5097e",
)

# The model's own chat template, the query (+ instruction) as the only user message. No stop
# strings of its own: the chat template's end-of-turn token is the model's end of sequence.
CHAT = PromptTemplate(
    name="chat",
    stop=(),
    use_chat_template=True,
    source="the model's tokenizer (apply_chat_template, add_generation_prompt=True)",
)

# Templates whose text changed after run directories were made that do not record the
# fingerprint (before dartmath recorded it): resuming one of those runs would mix two renderings.
CHANGED_SINCE_UNRECORDED = {
    "alpaca": "it now ends with a newline after '### Response:', as DART-Math rendered it",
}

TEMPLATES: dict[str, PromptTemplate] = {t.name: t for t in (ALPACA, DEEPSEEKMATH, QWEN_BOXED, CHAT)}


def get_template(name: str, instruction: str | None = None) -> PromptTemplate:
    """The template called `name`; `instruction` (chat only) is appended to every query."""
    template = TEMPLATES.get(name)
    if template is None:
        raise ConfigError(
            f"unknown prompt template {name!r}; known templates: {', '.join(TEMPLATES)}"
        )
    if instruction is not None and not instruction.strip():
        instruction = None
    if instruction is None:
        return template
    if not template.use_chat_template:
        raise ConfigError(
            f"prompt template {name!r} is a fixed format and takes no instruction "
            "(prompt.instruction applies to the 'chat' template only)"
        )
    return dataclasses.replace(template, instruction=instruction)
