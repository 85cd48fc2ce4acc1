"""Token offsets of SGLang's ``logprobs.content``: byte offsets of each token in the answer's text.

SGLang builds ``logprobs.content[].bytes`` as ``list(token.encode("utf-8"))`` of each token decoded *on
its own* (``serving_chat._process_logprobs_tokens``), so a byte-level token that holds part of a
multi-byte character arrives as U+FFFD with the bytes of U+FFFD, not its own bytes. Exact bytes
(OpenAI's shape) align directly; lossy runs are re-aligned against the text and their inner boundaries
estimated. The matched stop token (``<|user|>``), which SGLang reports in ``logprobs`` but leaves out of
``content``, is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from app.engines.base import EngineError, TokenLogprob

_REPLACEMENT = "\ufffd"
_SPECIAL_TOKEN = re.compile(r"(?:<\|[^<>|\s]+\|>|</s>|<eos>|<\|endoftext\|>)+")


def protocol_error(message: str) -> EngineError:
    """SGLang answered something this client cannot read: not retried, a bug on one side."""
    return EngineError(f"unexpected SGLang response: {message}", category="engine_protocol", retryable=False)


def align_tokens(text: str, entries: Sequence[Any]) -> tuple[list[TokenLogprob], bool, int]:
    """Byte offsets of each ``logprobs.content`` entry in ``text``.

    Returns the tokens, whether every offset is exact, and how many entries were skipped (special tokens
    that ``content`` omits, such as the matched stop token). Raises ``engine_protocol`` when the tokens
    do not spell the text.
    """
    data = text.encode("utf-8")
    parsed = [_entry(entry, index) for index, entry in enumerate(entries)]
    tokens: list[TokenLogprob] = []
    exact, skipped, pos, i = True, 0, 0, 0
    while i < len(parsed):
        token, raw, logprob = parsed[i]
        if raw and data.startswith(raw, pos):
            tokens.append(TokenLogprob(token, pos, pos + len(raw), logprob))
            pos += len(raw)
            i += 1
        elif _REPLACEMENT in token:
            j = i + 1
            while j < len(parsed) and _REPLACEMENT in parsed[j][0]:
                j += 1
            run = parsed[i:j]
            lengths = _lossy_run(text, data, pos, [t for t, _, _ in run], _anchor(parsed[j:]))
            if lengths is None:
                raise protocol_error(
                    f"logprobs tokens {i}..{j - 1} (partial characters) do not match the text"
                )
            for (run_token, _, run_logprob), length in zip(run, lengths, strict=True):
                tokens.append(TokenLogprob(run_token, pos, pos + length, run_logprob))
                pos += length
            exact = False
            i = j
        elif not raw or _SPECIAL_TOKEN.fullmatch(token):
            skipped += 1
            i += 1
        else:
            raise protocol_error(
                f"logprobs token {i} ({token!r}) does not match the text at byte {pos} "
                f"({data[pos : pos + 16]!r}); is a reasoning parser configured on the server?"
            )
    if pos != len(data):
        raise protocol_error(f"logprobs tokens cover {pos} of the text's {len(data)} bytes")
    return tokens, exact, skipped


def _entry(entry: Any, index: int) -> tuple[str, bytes, float]:
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        raise protocol_error(f"logprobs.content[{index}] has no token")
    token: str = entry["token"]
    raw = entry.get("bytes")
    if raw is None:
        raw_bytes = token.encode("utf-8")
    elif isinstance(raw, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in raw):
        raw_bytes = bytes(raw)
    else:
        raise protocol_error(f"logprobs.content[{index}].bytes is not a list of bytes")
    logprob = entry.get("logprob")
    if logprob is None:
        value = float("-inf")  # JSON has no -inf; SGLang's serialiser writes null for it
    elif isinstance(logprob, int | float) and not isinstance(logprob, bool):
        value = float(logprob)
    else:
        raise protocol_error(f"logprobs.content[{index}].logprob is not a number")
    return token, raw_bytes, value


def _anchor(rest: Sequence[tuple[str, bytes, float]]) -> str | None:
    """The text of the next token that must follow a lossy run (``None``: the run ends the text)."""
    for token, raw, _ in rest:
        if raw and not _SPECIAL_TOKEN.fullmatch(token):
            return token
    return None


def _lossy_run(text: str, data: bytes, pos: int, run: Sequence[str], anchor: str | None) -> list[int] | None:
    """Byte lengths of a run of tokens that contain U+FFFD, or ``None`` when the run cannot be placed.

    Each U+FFFD stands for one or more bytes of non-ASCII characters; literal characters stand for
    themselves. The run is matched against the text where it starts, up to where the next token begins;
    the bytes of each group of consecutive U+FFFD are then shared among its U+FFFD as evenly as possible
    (exact for the common split of one character into a lead byte and the rest).
    """
    try:
        start = len(data[:pos].decode("utf-8"))
    except UnicodeDecodeError:
        return None
    joined = "".join(run)
    pieces = re.split(f"({_REPLACEMENT}+)", joined)
    pattern = "".join(
        "([^\\x00-\\x7f]+?)" if p.startswith(_REPLACEMENT) else re.escape(p) for p in pieces if p
    )
    pattern += f"(?={re.escape(anchor)})" if anchor is not None else r"\Z"
    match = re.compile(pattern, re.DOTALL).match(text, start)
    if match is None:
        return None
    group_bytes = [len(g.encode("utf-8")) for g in match.groups()]
    # Per character of the joined run: its byte length (U+FFFD: a share of its group's bytes).
    char_bytes: list[int] = []
    group = 0
    for piece in pieces:
        if not piece:
            continue
        if piece.startswith(_REPLACEMENT):
            count, total = len(piece), group_bytes[group]
            base, extra = divmod(total, count)
            char_bytes.extend(base + (1 if k < extra else 0) for k in range(count))
            group += 1
        else:
            char_bytes.extend(len(c.encode("utf-8")) for c in piece)
    lengths, offset = [], 0
    for token in run:
        lengths.append(sum(char_bytes[offset : offset + len(token)]))
        offset += len(token)
    return lengths
