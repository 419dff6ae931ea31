"""Reading GGUF headers: the embedded model's facts, and a clear error for every broken file."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.errors import InvalidModelFile
from inference.gguf_header import parse_header, read_header
from tests.inference.conftest import tiny_gguf


@pytest.fixture(scope="module")
def tiny_bytes(tmp_path_factory) -> bytes:
    return tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf").read_bytes()


def test_embedded_header_describes_smollm2(embedded):
    header = read_header(embedded.path)
    assert header.architecture == "llama"
    assert header.vocabulary_size == 49152
    assert header.context_length == 8192
    assert header.quantisation == "Q4_1"
    assert header.parameters == 134_515_008
    assert header.chat_template and "<|im_start|>" in header.chat_template
    assert header.data_offset + header.data_size == embedded.path.stat().st_size


def test_a_small_gguf_written_by_the_gguf_package_is_read(tiny_bytes):
    header = parse_header(tiny_bytes)
    assert (header.architecture, header.vocabulary_size, header.context_length) == ("llama", 8, 64)
    assert [tensor.name for tensor in header.tensors] == ["token_embd.weight", "output_norm.weight"]


def test_a_truncated_model_file_is_refused(embedded, tmp_path):
    truncated = tmp_path / "truncated.gguf"
    with open(embedded.path, "rb") as source:
        truncated.write_bytes(source.read(3_000_000))
    with pytest.raises(InvalidModelFile, match="truncated"):
        read_header(truncated)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "too short"), (b"not a model at all, just some text....", "not a GGUF file"),
     (b"GGUF" + (99).to_bytes(4, "little") + bytes(40), "unsupported GGUF version")],
)
def test_non_gguf_files_are_refused(tmp_path, content, message):
    path = tmp_path / "file.gguf"
    path.write_bytes(content)
    with pytest.raises(InvalidModelFile, match=message):
        read_header(path)


def test_missing_files_and_directories_are_refused(tmp_path):
    with pytest.raises(InvalidModelFile, match="no such file"):
        read_header(tmp_path / "absent.gguf")
    with pytest.raises(InvalidModelFile, match="not a regular file"):
        read_header(tmp_path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0))
def test_every_truncation_is_refused(tiny_bytes, cut):
    header = parse_header(tiny_bytes)
    needed = header.data_offset + header.data_size  # the writer pads after the last tensor
    with pytest.raises(InvalidModelFile):
        parse_header(tiny_bytes[: cut % needed])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_headers_parse_or_raise_invalid_model_file(tiny_bytes, data):
    corrupted = bytearray(tiny_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(0, 447))  # inside the header, before the tensor data
        corrupted[index] = data.draw(st.integers(0, 255))
    try:
        parse_header(bytes(corrupted))
    except InvalidModelFile:
        pass


@settings(max_examples=200, deadline=None)
@given(content=st.binary(max_size=300))
def test_random_bytes_never_crash_the_reader(content):
    try:
        parse_header(b"GGUF" + content)
    except InvalidModelFile:
        pass
