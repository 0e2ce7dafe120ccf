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


# DART-Math, hkust-nlp/dart-math `dart_math/utils.py` (PROMPT_TEMPLATE_ID2DICT["alpaca"]):
# sys_prompt + "### Instruction:\n" + query + "\n\n" + "### Response:\n". Their
# `make_prefix_prompt` rstrips the part after the system prompt ("important for correct
# tokenization") and `dart_math/gen.py` strips the whole prompt, so the prompt the models were
# trained (`make_qa_pair` = prefix + response) and evaluated with ends in "### Response:".
# Stop strings: `pipeline/gen.py` uses [query_prompt.strip(), resp_prompt.strip()].
ALPACA = PromptTemplate(
    name="alpaca",
    prefix=(
        "Below is an instruction that describes a task. "
        "Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n"
    ),
    suffix="\n\n### Response:",
    stop=("### Instruction:", "### Response:"),
    source="hkust-nlp/dart-math dart_math/utils.py (alpaca); stops: pipeline/gen.py",
)

# DART-Math's synthesis prompt for DeepSeekMath-7B-RL: hkust-nlp/dart-math `dart_math/utils.py`
# (PROMPT_TEMPLATE_ID2DICT["deepseekmath"]: "User: " + query + "\nPlease reason step by step,
# and put your final answer within \\boxed{}.\n\n" + "Assistant: ", rstripped as above); chosen
# for deepseek-ai/deepseek-math-7b-rl by `PromptTemplate.get_prompt_template_from_prompt_type_
# and_model("cot", ...)`, which the README's synthesis command uses. It is the
# deepseek-math-7b-rl model card's chain-of-thought prompt ("{question}\nPlease reason step by
# step, ...") in the DeepSeek chat layout ("User: {content}\n\nAssistant:"), less the BOS token
# that tokenization adds. Stops: `pipeline/gen.py`.
DEEPSEEKMATH = PromptTemplate(
    name="deepseekmath",
    prefix="User: ",
    suffix="\nPlease reason step by step, and put your final answer within \\boxed{}.\n\nAssistant:",
    stop=("User:", "Assistant:"),
    source="hkust-nlp/dart-math dart_math/utils.py (deepseekmath); stops: pipeline/gen.py",
)

# Qwen2.5-Math-Instruct's chain-of-thought format: system prompt from QwenLM/Qwen2.5-Math
# README.md ("CoT" messages), in the ChatML layout of its tokenizer's chat template; the same
# string as the "qwen25-math-cot" prompt of Qwen2.5-Math's evaluation code (evaluation/
# utils.py). Note: that code's own "qwen-boxed" prompt is an older, different one (system
# "You are a helpful assistant.", instruction after the question); ours follows Qwen2.5-Math.
# Stops: evaluation/math_eval.py stop_words (the end-of-turn/end-of-text tokens).
QWEN_BOXED = PromptTemplate(
    name="qwen-boxed",
    prefix=(
        "<|im_start|>system\n"
        "Please reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\n"
    ),
    suffix="<|im_end|>\n<|im_start|>assistant\n",
    stop=("<|im_end|>", "<|endoftext|>"),
    source="QwenLM/Qwen2.5-Math README.md (CoT); evaluation/utils.py qwen25-math-cot",
)

# The model's own chat template, the query (+ instruction) as the only user message. No stop
# strings of its own: the chat template's end-of-turn token is the model's end of sequence.
CHAT = PromptTemplate(
    name="chat",
    stop=(),
    use_chat_template=True,
    source="the model's tokenizer (apply_chat_template, add_generation_prompt=True)",
)

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
