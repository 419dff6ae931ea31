"""OpenAI's request and response shapes: parsing a completion request, and the documents sent back.

The gateway accepts the fields of OpenAI's chat completions and (legacy) completions requests that
the chain can honour, checks each one's type and range, and refuses the rest with OpenAI's error
envelope naming the field (`param`). Fields it does not know are ignored, as OpenAI's own API
ignores fields a newer client sends; a known field it cannot honour (`n` above 1, `stop`, tools,
logprobs) is refused rather than silently dropped.

Chat messages become the one user message the chain's `chat` prompt format wraps in the model's
chat template (inference/prompt.py): a lone user message is sent as it is; any other conversation
(a system message, earlier turns) is written out as a transcript inside that one user message,
"System: ...", "User: ...", "Assistant: ..." separated by blank lines. docs/gateway.md says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from proto import state_pb2
from runtime.models import MAX_ENGINE_CLASSES, class_name_problem

U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
TEMPERATURE_SCALE = 1_000
# OpenAI's range for temperature, 0 to 2: its API refuses more, and so does the gateway. The chain's sampler takes
# up to 100.0 (proto/job_form.py MAX_TEMPERATURE_MILLI) through the CLI and the gRPC API.
MAX_OPENAI_TEMPERATURE_MILLI = 2_000
TOP_P_SCALE = 1_000_000
# OpenAI's defaults where a request leaves a field out; top_k has no OpenAI field: the chain's sampler default.
DEFAULT_TEMPERATURE_MILLI = 1_000
DEFAULT_TOP_P_PPM = 1_000_000
DEFAULT_TOP_K = 40
# Roles a chat message may have, and how a transcript names each; "developer" is OpenAI's newer "system".
TRANSCRIPT_NAMES = {"system": "System", "developer": "System", "user": "User", "assistant": "Assistant"}
MAX_MESSAGES = 256
MAX_REGION_CHARS = 64
# Fields OpenAI defines that the chain cannot honour: refused when set to anything but a value that asks for
# nothing (null, false or 0, an empty list or object, or one listed here; clients and frameworks send some by
# default).
UNSUPPORTED = {
    "stop": (), "tools": (), "functions": (), "tool_choice": ("none", "auto"), "function_call": ("none", "auto"),
    "logit_bias": (), "response_format": ({"type": "text"},), "suffix": ("",), "echo": (), "best_of": (1,),
    "logprobs": (), "top_logprobs": (0,), "presence_penalty": (0,), "frequency_penalty": (0,),
}


class RequestError(Exception):
    """A request the gateway refuses: the HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 error_type: str = "invalid_request_error", code: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.error_type = error_type
        self.code = code
        self.retry_after = retry_after


def error_document(error: RequestError) -> dict:
    """OpenAI's error envelope: {"error": {"message", "type", "param", "code"}}."""
    return {"error": {"message": error.message, "type": error.error_type, "param": error.param, "code": error.code}}


def invalid(message: str, param: str | None = None, code: str = "invalid_value") -> RequestError:
    """A 400 invalid_request_error naming the field."""
    return RequestError(400, message, param=param, code=code)


@dataclass(frozen=True)
class CompletionRequest:
    """What a chat or text completion request asks the chain for, every field checked."""

    kind: str  # "chat" or "text"
    model: str
    prompt: str
    prompt_format: str  # the chain's: "chat" (template-wrapped) or "raw"
    max_tokens: int | None
    temperature_milli: int
    top_k: int
    top_p_ppm: int
    seed: int | None
    stream: bool
    include_usage: bool
    redundancy: int
    max_price_per_token: int | None
    region: str
    engine_classes: tuple[str, ...] = ()


def parse_chat_request(body: object) -> CompletionRequest:
    """A POST /v1/chat/completions body, checked; RequestError naming the first bad field."""
    document = _object(body, None)
    prompt = chat_prompt(document.get("messages"))
    max_tokens = _optional_integer(document, "max_completion_tokens", 1, U32_MAX)
    if max_tokens is None:
        max_tokens = _optional_integer(document, "max_tokens", 1, U32_MAX)
    return _request(document, "chat", prompt, "chat", max_tokens)


def parse_text_request(body: object) -> CompletionRequest:
    """A POST /v1/completions body (the prompt sent raw, as a continuation), checked."""
    document = _object(body, None)
    prompt = document.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]  # the client sends a one-prompt batch this way
    if not isinstance(prompt, str):
        raise invalid("prompt must be a string (or a list of exactly one string)", "prompt")
    if not prompt:
        raise invalid("prompt must not be empty", "prompt")
    return _request(document, "text", _encodable(prompt, "prompt"), "raw", _optional_integer(document, "max_tokens", 1, U32_MAX))


def chat_prompt(messages: object) -> str:
    """The one user message the chain's chat format wraps: the lone user message, or a transcript."""
    if not isinstance(messages, list) or not messages:
        raise invalid("messages must be a non-empty array of messages", "messages")
    if len(messages) > MAX_MESSAGES:
        raise invalid(f"messages holds at most {MAX_MESSAGES} messages, got {len(messages)}", "messages")
    turns = [_message(message, index) for index, message in enumerate(messages)]
    if turns[-1][0] == "assistant":
        raise invalid("the last message must not be the assistant's: the model answers the conversation", "messages")
    if len(turns) == 1 and turns[0][0] == "user":
        return turns[0][1]
    return "\n\n".join(f"{TRANSCRIPT_NAMES[role]}: {content}" for role, content in turns)


def _message(message: object, index: int) -> tuple[str, str]:
    where = f"messages[{index}]"
    document = _object(message, where)
    role = document.get("role")
    if role not in TRANSCRIPT_NAMES:
        raise invalid(f"{where}.role must be one of {', '.join(sorted(TRANSCRIPT_NAMES))}", f"{where}.role")
    content = document.get("content")
    if isinstance(content, list):
        content = "".join(_text_part(part, f"{where}.content[{position}]") for position, part in enumerate(content))
    if not isinstance(content, str):
        raise invalid(f"{where}.content must be a string or an array of text parts", f"{where}.content")
    if not content and role == "user":
        raise invalid(f"{where}.content must not be empty", f"{where}.content")
    return role, _encodable(content, f"{where}.content")


def _text_part(part: object, where: str) -> str:
    document = _object(part, where)
    if document.get("type") != "text" or not isinstance(document.get("text"), str):
        raise invalid(f"{where} must be a text part {{\"type\": \"text\", \"text\": ...}}: the chain runs text "
                      "models only", where)
    return document["text"]


def _request(document: dict, kind: str, prompt: str, prompt_format: str, max_tokens: int | None) -> CompletionRequest:
    model = document.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model must be a non-empty string: a registered model's name or id (GET /v1/models)", "model")
    _check_unsupported(document)
    n = _optional_integer(document, "n", 1, U32_MAX)
    if n not in (None, 1):
        raise invalid("n must be 1: each request is one job on the chain", "n")
    stream = _optional_bool(document, "stream", False)
    options = document.get("stream_options")
    include_usage = False
    if options is not None:
        options = _object(options, "stream_options")
        include_usage = _optional_bool(options, "include_usage", False, "stream_options.include_usage")
    temperature = _optional_decimal(document, "temperature", TEMPERATURE_SCALE, 0, MAX_OPENAI_TEMPERATURE_MILLI)
    top_p = _optional_decimal(document, "top_p", TOP_P_SCALE, 1, TOP_P_SCALE)
    extras = _object(document.get("inferchain", {}), "inferchain")
    region = extras.get("region", "")
    if not isinstance(region, str) or len(region) > MAX_REGION_CHARS:
        raise invalid(f"inferchain.region must be a string of at most {MAX_REGION_CHARS} characters",
                      "inferchain.region")
    _encodable(region, "inferchain.region")
    engine_classes = _engine_classes(extras.get("engine_classes", []))
    top_k = _optional_integer(extras, "top_k", 0, U32_MAX, "inferchain.top_k")
    redundancy = _optional_integer(extras, "redundancy", 1, U32_MAX, "inferchain.redundancy")
    return CompletionRequest(
        kind=kind, model=model, prompt=prompt, prompt_format=prompt_format, max_tokens=max_tokens,
        temperature_milli=DEFAULT_TEMPERATURE_MILLI if temperature is None else temperature,
        top_k=DEFAULT_TOP_K if top_k is None else top_k,
        top_p_ppm=DEFAULT_TOP_P_PPM if top_p is None else top_p,
        seed=_optional_integer(document, "seed", 0, U64_MAX), stream=stream, include_usage=include_usage,
        redundancy=1 if redundancy is None else redundancy,
        max_price_per_token=_optional_integer(extras, "max_price_per_token", 1, U64_MAX,
                                              "inferchain.max_price_per_token"),
        region=region,
        engine_classes=engine_classes,
    )


def _engine_classes(value: object) -> tuple[str, ...]:
    """inferchain.engine_classes: the engine classes whose executors may run the job (empty: any), each a class
    name as the chain checks it; the chain refuses a class the model lacks or nobody offers."""
    where = "inferchain.engine_classes"
    if not isinstance(value, list) or len(value) > MAX_ENGINE_CLASSES:
        raise invalid(f"{where} must be a list of at most {MAX_ENGINE_CLASSES} engine class names", where)
    for index, name in enumerate(value):
        problem = class_name_problem(name) if isinstance(name, str) else "an engine class name is a string"
        if problem is not None:
            raise invalid(f"{where}[{index}]: {problem}", f"{where}[{index}]")
    if len(set(value)) != len(value):
        raise invalid(f"{where} names a class twice", where)
    return tuple(value)


def _check_unsupported(document: dict) -> None:
    for name, neutral in UNSUPPORTED.items():
        value = document.get(name)
        if value not in (None, False, [], {}) and not any(_same(value, allowed) for allowed in neutral):
            raise invalid(f"{name} is not supported by this gateway (the chain cannot honour it)", name,
                          "unsupported_parameter")


def _same(value: object, allowed: object) -> bool:
    """JSON equality without Python's True == 1 (best_of: true is not best_of: 1; 1.0 is 1)."""
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    return value == allowed


def _encodable(text: str, param: str) -> str:
    """The text, refused when it holds a lone surrogate (JSON's "\\ud800" escape): not valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise invalid(f"{param} is not valid Unicode text (a lone surrogate at character {error.start})",
                      param) from None
    return text


def _object(value: object, param: str | None) -> dict:
    if not isinstance(value, dict):
        raise invalid(f"{param or 'the request body'} must be a JSON object", param)
    return value


def _optional_bool(document: dict, name: str, default: bool, param: str | None = None) -> bool:
    value = document.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"{param or name} must be true or false", param or name, "invalid_type")
    return value


def _optional_integer(document: dict, name: str, low: int, high: int, param: str | None = None) -> int | None:
    value = document.get(name)
    param = param or name
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{param} must be an integer", param, "invalid_type")
    if not low <= value <= high:
        shown = str(value) if len(str(value)) <= 24 else f"{str(value)[:20]}... ({len(str(value))} digits)"
        raise invalid(f"{param} must be from {low} to {high}, got {shown}", param)
    return value


def _optional_decimal(document: dict, name: str, scale: int, low: int, high: int) -> int | None:
    """A JSON number as an integer in 1/scale units (nearest), within [low, high] of those units."""
    value = document.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(f"{name} must be a number", name, "invalid_type")
    try:
        fixed = int((Decimal(repr(value)) * scale).to_integral_value())
    except (InvalidOperation, ValueError, OverflowError):
        raise invalid(f"{name} must be a finite number", name) from None
    if not low <= fixed <= high:
        raise invalid(f"{name} must be from {low / scale:g} to {high / scale:g}, got {value!r}", name)
    return fixed


# --- what is sent back -------------------------------------------------------------------------


def finish_reason(stop_reason: str) -> str:
    """OpenAI's finish_reason for the chain's stop reason: "eos" -> "stop", "length" -> "length"."""
    return "length" if stop_reason == "length" else "stop"


def usage_document(reveal: state_pb2.Reveal) -> dict:
    prompt_tokens, completion_tokens = reveal.prompt_tokens, len(reveal.tokens)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_id(kind: str, job_id: bytes) -> str:
    """"chatcmpl-<job id hex>" (or "cmpl-..." for a text completion): the job, in OpenAI's id form."""
    return f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{job_id.hex()}"


@dataclass(frozen=True)
class Envelope:
    """What every document and chunk of one completion shares."""

    kind: str
    job_id: bytes
    created: int
    model: str
    engine: str

    def base(self, chunk: bool = False) -> dict:
        if self.kind == "chat":
            object_name = "chat.completion.chunk" if chunk else "chat.completion"
        else:
            object_name = "text_completion"
        return {"id": completion_id(self.kind, self.job_id), "object": object_name, "created": self.created,
                "model": self.model, "system_fingerprint": self.engine}


def completion_document(envelope: Envelope, reveal: state_pb2.Reveal, extension: dict) -> dict:
    """The whole answer: chat.completion (choices[0].message) or text_completion (choices[0].text)."""
    reason = finish_reason(reveal.stop_reason)
    if envelope.kind == "chat":
        choice = {"index": 0, "message": {"role": "assistant", "content": reveal.text, "refusal": None},
                  "logprobs": None, "finish_reason": reason}
    else:
        choice = {"index": 0, "text": reveal.text, "logprobs": None, "finish_reason": reason}
    return {**envelope.base(), "choices": [choice], "usage": usage_document(reveal), "inferchain": extension}


def chunk_document(envelope: Envelope, *, role: bool = False, text: str | None = None,
                   reason: str | None = None, extension: dict | None = None) -> dict:
    """One streamed chunk: the role, a piece of text, or the finish reason (with the chain's extension)."""
    if envelope.kind == "chat":
        delta: dict = {}
        if role:
            delta = {"role": "assistant", "content": ""}
        elif text is not None:
            delta = {"content": text}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
    document = {**envelope.base(chunk=True), "choices": [choice]}
    if extension is not None:
        document["inferchain"] = extension
    return document


def usage_chunk(envelope: Envelope, reveal: state_pb2.Reveal) -> dict:
    """The chunk stream_options.include_usage asks for: no choices, the usage."""
    return {**envelope.base(chunk=True), "choices": [], "usage": usage_document(reveal)}


# A word with the space before it: how BPE vocabularies split text ("Ġword"), so the pieces read as tokens do.
_PIECE = re.compile(r"\s*\S+|\s+")


def text_pieces(text: str, tokens: int) -> list[str]:
    """The revealed text in at most `tokens` pieces (words with their leading space), joined back exactly."""
    pieces = _PIECE.findall(text)
    if tokens <= 0 or len(pieces) <= tokens:
        return pieces
    per = -(-len(pieces) // tokens)
    return ["".join(pieces[start:start + per]) for start in range(0, len(pieces), per)]
