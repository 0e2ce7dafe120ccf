"""Reading a streamed completion (server-sent events) into finished samples."""

from __future__ import annotations

import json

import pytest

from dartmath.sampling.completion_stream import CompletionStream, StreamError


def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _delta(i: int, text: str, ids: list[int] | None = None, finish: str | None = None) -> bytes:
    choice: dict = {"index": i, "text": text, "logprobs": None, "finish_reason": finish}
    if ids is not None:
        choice["token_ids"] = ids
    return _event({"id": "cmpl-1", "object": "text_completion", "choices": [choice]})


# vLLM's shape: the samples interleave; the last delta of each carries its finish reason
BODY = (
    _delta(0, "The ans", [11, 12])
    + b": ping\n\n"  # an SSE comment (a proxy's keep-alive) carries nothing
    + _delta(1, "No", [21])
    + _delta(1, "pe.", [22, 23], "stop")
    + _delta(0, "wer is 4.", [13, 14, 15], "length")
    + _event({"id": "cmpl-1", "choices": [], "usage": {"completion_tokens": 8}})
    + b"data: [DONE]\n\n"
)


def _read_all(stream: CompletionStream, body: bytes, cuts: list[int]) -> list[tuple]:
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True):
        out += stream.feed(body[a:b])
    out += stream.end()
    return [(c.index, c.text, c.n_tokens, c.finish_reason) for c in out]


def test_samples_come_out_whole_as_they_finish_with_exact_token_counts_at_any_split():
    want = [(1, "Nope.", 3, "stop"), (0, "The answer is 4.", 5, "length")]
    assert _read_all(CompletionStream(2), BODY, []) == want
    for cut in range(1, len(BODY)):  # bytes arrive in any pieces, even mid-line
        assert _read_all(CompletionStream(2), BODY, [cut]) == want, cut
    assert _read_all(CompletionStream(2), BODY, list(range(1, len(BODY)))) == want


def test_a_sample_is_handed_on_as_soon_as_its_last_delta_is_in():
    stream = CompletionStream(2)
    first = BODY.index(b"data: ", BODY.index(b'"pe."'))  # just after sample 1's last delta
    assert [c.index for c in stream.feed(BODY[:first])] == [1]
    assert stream.finished == 1 and not stream.done
    assert [c.index for c in stream.feed(BODY[first:])] == [0]
    assert stream.done


def test_crlf_line_ends_are_read_too():
    body = BODY.replace(b"\n", b"\r\n")
    assert [c[0] for c in _read_all(CompletionStream(2), body, [7])] == [1, 0]


def test_without_token_ids_a_lone_sample_takes_the_usage_count_others_none():
    one = _delta(0, "x", finish="stop") + _event({"choices": [], "usage": {"completion_tokens": 7}})
    stream = CompletionStream(1)
    assert stream.feed(one[: one.index(b"data: ", 5)]) == []  # held until the usage arrives
    assert _read_all(CompletionStream(1), one + b"data: [DONE]\n\n", []) == [(0, "x", 7, "stop")]
    # no usage event at all: the count is unknown
    assert _read_all(CompletionStream(1), _delta(0, "x", finish="stop"), []) == [
        (0, "x", None, "stop")
    ]
    two = _delta(0, "a", finish="stop") + _delta(1, "b", finish="stop")
    usage = _event({"choices": [], "usage": {"completion_tokens": 2}})
    assert [c[2] for c in _read_all(CompletionStream(2), two + usage, [])] == [None, None]


def test_an_error_event_is_raised_with_its_code():
    stream = CompletionStream(2)
    stream.feed(_delta(0, "par", [1]))
    error = {"error": {"message": "EngineCore encountered an issue", "type": "x", "code": 500}}
    with pytest.raises(StreamError, match="EngineCore encountered") as info:
        stream.feed(_event(error))
    assert info.value.code == 500


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (_delta(0, "a", [1], "stop"), "ended with 1 of 2 samples finished"),
        (_delta(2, "a", [1], "stop"), "outside the request's 2"),
        (_delta(0, "a", [1], "stop") + _delta(0, "b", [2]), "went on after it finished"),
        (b'data: {"choices": [{"index": 0, "te\n\n', "unexpected end of data"),
        (b"data: [1, 2]\n\n", "not a JSON object"),
    ],
)
def test_a_broken_stream_is_an_error_not_a_short_answer(body, message):
    with pytest.raises((ValueError, TypeError), match=message):
        _read_all(CompletionStream(2), body, [])


def test_a_retry_for_some_samples_reads_back_under_their_numbers():
    # a retry asked for samples 4 and 7 only: its choices 0 and 1 stand for them
    got = _read_all(CompletionStream(2, [4, 7]), BODY, [])
    assert got == [(7, "Nope.", 3, "stop"), (4, "The answer is 4.", 5, "length")]
