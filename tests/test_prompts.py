"""Prompt templates: exact strings, stop strings, the model's own chat template, errors."""

from __future__ import annotations

import pytest

from dartmath.errors import ConfigError
from dartmath.sampling.backends import sampling_params
from dartmath.sampling.prompts import get_template
from dartmath.synth.config import load_config

QUERY = "What is $2 + 3$?"
NAMES = ("alpaca", "deepseekmath", "qwen-boxed", "chat")  # the names a config may give


@pytest.fixture(scope="module")
def tokenizer(embedded_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(embedded_dir))


def _run_config(**overrides):
    base = {"queries.source": "q.jsonl", "run.dir": "run", "strategy.k_p": 4}
    return load_config(None, {**base, "strategy.n_probe": 2, "strategy.max_raw": 8, **overrides})


@pytest.mark.parametrize(
    "name",
    [*NAMES[:-1], pytest.param("chat", marks=pytest.mark.slow)],  # chat: the model's tokenizer
)
def test_every_template_name_loads_from_a_run_config_and_renders_a_query(name, request):
    cfg = _run_config(**{"prompt.template": name})
    template = get_template(cfg.prompt.template, cfg.prompt.instruction)  # as `dart synth` does
    assert template.name == name
    tokenizer = request.getfixturevalue("tokenizer") if name == "chat" else None
    text = template.render(QUERY, tokenizer)
    assert QUERY in text and text != QUERY


def test_alpaca_renders_byte_for_byte_as_dart_math():
    # hkust-nlp/dart-math dart_math/utils.py@6d06e74 "alpaca"; make_prefix_prompt's .rstrip(" ")
    # keeps the newline after "### Response:"
    expected = (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n"
        "### Instruction:\n"
        "What is $2 + 3$?"
        "\n\n### Response:\n"
    )
    text = get_template("alpaca").render(QUERY)
    assert text == expected
    assert text.encode() == expected.encode()
    assert text.endswith("### Response:\n") and not text.endswith("\n\n")


def test_deepseekmath_renders_byte_for_byte_as_dart_math_synthesis_prompt():
    # dart_math/utils.py@6d06e74 "deepseekmath": "Assistant: " loses its space to .rstrip(" ")
    expected = (
        "User: What is $2 + 3$?\n"
        "Please reason step by step, and put your final answer within \\boxed{}.\n\n"
        "Assistant:"
    )
    text = get_template("deepseekmath").render(QUERY)
    assert text == expected
    assert text.encode() == expected.encode()


def test_qwen_boxed_renders_byte_for_byte_as_qwen25_math_cot():
    expected = (
        "<|im_start|>system\n"
        "Please reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        "<|im_start|>user\nWhat is $2 + 3$?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    text = get_template("qwen-boxed").render(QUERY)
    assert text == expected
    assert text.encode() == expected.encode()


def _dart_math_full_prompt(parts: dict[str, str], query: str) -> str:
    """DART-Math's zero-shot prompt rebuilt from its template fields, as make_full_prompt at
    dart_math/utils.py@6d06e74 joins them (the prefix loses trailing spaces only)."""
    prefix = (
        parts["query_prompt"]
        + query
        + parts["prompt_after_query"]
        + parts["resp_prompt"]
        + parts["prompt_before_resp"]
    )
    return parts["sys_prompt"] + prefix.rstrip(" ")


# The values of the PROMPT_TEMPLATE_ID2DICT fields at dart_math/utils.py@6d06e74.
DART_MATH_FIELDS = {
    "alpaca": {
        "sys_prompt": "Below is an instruction that describes a task. Write a response that "
        "appropriately completes the request." + "\n\n",
        "query_prompt": "### Instruction:" + "\n",
        "prompt_after_query": "\n\n",
        "resp_prompt": "### Response:" + "\n",
        "prompt_before_resp": "",
    },
    "deepseekmath": {
        "sys_prompt": "",
        "query_prompt": "User:" + " ",
        "prompt_after_query": "\n"
        + "Please reason step by step, and put your final answer within \\boxed{}."
        + "\n\n",
        "resp_prompt": "Assistant:" + " ",
        "prompt_before_resp": "",
    },
}


@pytest.mark.parametrize("name", sorted(DART_MATH_FIELDS))
@pytest.mark.parametrize("query", [QUERY, "  Find $x$ if $x^2 = 4$.  \n", "Line one.\n\nLine two."])
def test_dart_math_templates_match_the_source_composition(name, query):
    parts = DART_MATH_FIELDS[name]
    assert get_template(name).render(query) == _dart_math_full_prompt(parts, query)


def test_stop_strings_are_the_sources():
    # dart-math pipeline/gen.py@82377fc: [query_prompt.strip(), resp_prompt.strip()]
    for name, parts in DART_MATH_FIELDS.items():
        expected = (parts["query_prompt"].strip(), parts["resp_prompt"].strip())
        assert get_template(name).stop == expected
    assert get_template("alpaca").stop == ("### Instruction:", "### Response:")
    assert get_template("deepseekmath").stop == ("User:", "Assistant:")
    # Qwen2.5-Math evaluation/math_eval.py@ab5097e stop_words
    assert get_template("qwen-boxed").stop == ("</s>", "<|im_end|>", "<|endoftext|>")
    assert get_template("chat").stop == ()


def test_sources_name_file_and_commit():
    for name in ("alpaca", "deepseekmath"):
        source = get_template(name).source
        assert "dart_math/utils.py@6d06e74" in source and "pipeline/gen.py@82377fc" in source
    source = get_template("qwen-boxed").source
    assert "README.md@25a9bc8" in source and "evaluation/math_eval.py@ab5097e" in source


@pytest.mark.parametrize("name", NAMES)
def test_backends_send_the_template_stops_then_the_configs_without_duplicates(name):
    template = get_template(name)
    extra = ["\n\n\n", *template.stop[:1], "Problem:"]  # one repeats a template stop
    sent = sampling_params(_run_config(**{"sampling.stop": extra}), template)["stop"]
    assert sent == list(dict.fromkeys([*template.stop, "\n\n\n", "Problem:"]))
    assert len(sent) == len(set(sent))
    # without stops of either kind, none are sent (not an empty list)
    assert sampling_params(_run_config(), get_template("chat"))["stop"] is None


@pytest.mark.parametrize("name", ["alpaca", "deepseekmath", "qwen-boxed"])
def test_stop_strings_do_not_cut_answers(name):
    template = get_template(name)
    responses = [
        "2 + 3 = 5.\nThe answer is: 5",
        "Adding, $2 + 3 = 5$.\n\nTherefore, the answer is $\\boxed{5}$.",
        "We get \\boxed{\\frac{1}{2}}, i.e. the final answer is \\boxed{\\dfrac{1}{2}}.",
    ]
    for response in responses:
        assert not any(stop in response for stop in template.stop), (name, response)
    # Each stop string is what would open the next turn of the format.
    prompt = template.render(QUERY)
    assert any(stop.strip() in prompt for stop in template.stop)


def test_query_text_is_kept_verbatim_and_render_is_deterministic():
    query = "  Let $f(x)=\\{x\\}$ and {0} {query} %s.\n\nFind $f(2.5)$.  \n"
    for name in ("alpaca", "deepseekmath", "qwen-boxed"):
        template = get_template(name)
        first = template.render(query)
        assert query in first
        assert first == template.render(query) == get_template(name).render(query)
        assert first == template.prefix + query + template.suffix


def test_chat_uses_the_embedded_models_chat_template(tokenizer):
    template = get_template("chat")
    text = template.render(QUERY, tokenizer)
    assert text == tokenizer.apply_chat_template(
        [{"role": "user", "content": QUERY}], tokenize=False, add_generation_prompt=True
    )
    assert text.endswith("<|im_start|>user\nWhat is $2 + 3$?<|im_end|>\n<|im_start|>assistant\n")
    assert text == template.render(QUERY, tokenizer)


def test_chat_instruction_is_appended_to_the_query(tokenizer):
    instruction = "Put your final answer within \\boxed{}."
    template = get_template("chat", instruction)
    assert template.instruction == instruction
    assert template.user_message(QUERY) == f"{QUERY}\n{instruction}"
    text = template.render(QUERY, tokenizer)
    assert f"<|im_start|>user\n{QUERY}\n{instruction}<|im_end|>\n" in text
    assert get_template("chat").instruction is None  # the shared template is not changed


def test_blank_instruction_means_none():
    assert get_template("chat", "").instruction is None
    assert get_template("chat", "  \n").instruction is None
    assert get_template("alpaca", "") is get_template("alpaca")


def test_chat_needs_a_tokenizer():
    with pytest.raises(ValueError, match="needs its tokenizer"):
        get_template("chat").render(QUERY)


def test_chat_fails_clearly_without_a_chat_template(embedded_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(embedded_dir))
    tok.chat_template = None
    with pytest.raises(ConfigError, match="has no chat template") as e:
        get_template("chat").render(QUERY, tok)
    assert "alpaca" in str(e.value)


def test_plain_templates_ignore_the_tokenizer(tokenizer):
    for name in ("alpaca", "deepseekmath", "qwen-boxed"):
        template = get_template(name)
        assert template.render(QUERY, tokenizer) == template.render(QUERY)


def test_a_run_config_with_an_unknown_template_fails_naming_the_known_ones():
    cfg = _run_config(**{"prompt.template": "alpacca"})
    with pytest.raises(ConfigError, match="unknown prompt template 'alpacca'") as e:
        get_template(cfg.prompt.template, cfg.prompt.instruction)
    for name in NAMES:
        assert name in str(e.value)


def test_instruction_only_for_chat():
    with pytest.raises(ConfigError, match="'chat' template only"):
        get_template("deepseekmath", "Think hard.")


def test_query_must_be_text():
    with pytest.raises(TypeError):
        get_template("alpaca").render(None)  # type: ignore[arg-type]
