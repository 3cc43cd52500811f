"""Pure pieces of modelsync.service: layout, settings, cache, event mapping, tensor decoding."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from modelsync.service import layout
from modelsync.service.config import Settings
from modelsync.service.errors import InvalidModelInput, InvalidRequest, PayloadTooLarge
from modelsync.service.http.routes import etag_matches, parse_revision
from modelsync.service.inference import decode_v2_inputs
from modelsync.service.notify import ALIAS_MOVED, UPLOAD_REJECTED, MalformedChange, event_for_change
from modelsync.service.store import ModelCache

F = [SimpleNamespace(name="a", kind="numeric"), SimpleNamespace(name="b", kind="categorical")]
N = [SimpleNamespace(name="x", kind="numeric"), SimpleNamespace(name="y", kind="numeric")]


def test_layout():
    assert layout.model_of_upload("incoming/iris/a.json") == "iris"
    # refused keys: sub-folders, other suffixes, no model folder; each is still attributed for its report
    for key, folder, why in [("incoming/iris/2024/a.json", "iris", "sub-folders"),
                             ("incoming/iris/model.txt", "iris", "does not end in .json"),
                             ("incoming/iris/.json", "iris", "does not end in .json"),
                             ("incoming/a.json", "_invalid", "valid model name"),
                             ("incoming/../a.json", "_invalid", "valid model name"),
                             ("other/iris/a.json", "_invalid", "not under incoming/")]:
        assert layout.model_of_upload(key) is None
        assert layout.upload_folder(key) == folder
        assert why in (layout.upload_key_problem(key) or "")
    inp = layout.parse_batch_input("batch/input/iris/v3/day/1.csv")
    assert inp and (inp.model, inp.version, inp.name, inp.fmt) == ("iris", 3, "day/1.csv", "csv")
    assert inp.output_key(3) == "batch/output/iris/day/1.v3.csv"
    assert layout.parse_batch_input("batch/input/iris/v3.jsonl").version is None  # a file, not a folder
    assert layout.parse_batch_input("batch/input/iris/x.parquet") is None
    # an outputs= folder (after the version folder) names the methods; it stays in the name (own outputs)
    inp = layout.parse_batch_input("batch/input/iris/v3/outputs=decision_function,predict/day.csv")
    assert inp and (inp.version, inp.outputs, inp.name) == (3, "decision_function,predict",
                                                            "outputs=decision_function,predict/day.csv")
    assert inp.output_key(3) == "batch/output/iris/outputs=decision_function,predict/day.v3.csv"
    assert layout.parse_batch_input("batch/input/iris/outputs=x.csv").outputs is None  # a file, not a folder
    assert layout.parse_batch_input("batch/input/iris/day/outputs=transform/a.csv").outputs is None
    assert layout.upload_id("b", "k", '"e"') == layout.upload_id("b", "k", "e")


def test_settings():
    s = Settings.from_env({"MODELS_BUCKET": "b", "REGISTRY_TABLE": "t", "REQUIRE_APPROVAL": "true",
                           "MAX_ROWS_PER_REQUEST": "7"})
    assert s.require_approval and s.max_rows_per_request == 7
    assert s.batch_outputs == ""  # BatchOutputs left empty: the env var is absent, default columns
    assert Settings.from_env({"MODELS_BUCKET": "b", "REGISTRY_TABLE": "t",
                              "BATCH_OUTPUTS": " transform "}).batch_outputs == "transform"
    with pytest.raises(ValueError, match="REGISTRY_TABLE"):
        Settings.from_env({"MODELS_BUCKET": "b"})
    with pytest.raises(ValueError, match="integer"):
        Settings.from_env({"MODELS_BUCKET": "b", "REGISTRY_TABLE": "t", "MAX_UPLOAD_BYTES": "big"})


def test_model_cache_is_bounded_lru():
    cache = ModelCache(2)
    loads: list[tuple[str, int]] = []

    def get(key: tuple[str, int]) -> object:
        return cache.get(key, lambda: loads.append(key) or key)  # type: ignore[func-returns-value]

    get(("a", 1)), get(("b", 1)), get(("a", 1)), get(("c", 1)), get(("b", 1))
    assert loads == [("a", 1), ("b", 1), ("c", 1), ("b", 1)] and len(cache) == 2


def test_etags_and_revisions():
    assert etag_matches('W/"abc-1", "x"', '"abc-1"') and etag_matches("*", '"q"')
    assert not etag_matches(None, '"q"') and not etag_matches('"abc-2"', '"abc-1"')
    assert parse_revision('"3"') == 3 and parse_revision("3") == 3 and parse_revision("*") is None
    with pytest.raises(InvalidRequest):
        parse_revision('"abc-3"')


def test_event_mapping():
    old = {"kind": "alias", "model": "m", "alias": "latest", "version": 1, "revision": 1}
    new = {**old, "version": 2, "revision": 2}
    ev = event_for_change("MODIFY", old, new)
    assert ev and ev.event_type == ALIAS_MOVED and ev.detail["old_version"] == 1
    assert ev.attributes()["model"] == {"DataType": "String", "StringValue": "m"}
    assert event_for_change("MODIFY", old, {**old, "updated_at": "x"}) is None  # no move
    rej = event_for_change("MODIFY", {"kind": "upload", "status": "processing"},
                           {"kind": "upload", "status": "rejected", "model": "m", "upload_id": "u",
                            "problems": [{"pointer": "/x", "message": "bad"}]})
    assert rej and rej.event_type == UPLOAD_REJECTED and rej.detail["problem_count"] == 1
    assert event_for_change("INSERT", None, {"kind": "model", "model": "m"}) is None
    with pytest.raises(MalformedChange):
        event_for_change("INSERT", None, {"kind": "version", "model": "m", "version": 1})


def test_v2_decoding():
    X, rows = decode_v2_inputs([{"name": "t", "shape": [2, 2], "datatype": "INT32", "data": [1, 2, 3, 4]}],
                               N, 10)
    assert rows == 2 and X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    X, rows = decode_v2_inputs([{"name": "b", "shape": [2], "datatype": "BYTES", "data": ["u", None]},
                                {"name": "a", "shape": [2], "datatype": "FP32", "data": [0.1, None]}], F, 10)
    assert X["b"] == ["u", None] and X["a"][0] == float(np.float32(0.1)) and math.isnan(X["a"][1])
    with pytest.raises(PayloadTooLarge):
        decode_v2_inputs([{"name": "t", "shape": [11, 2], "datatype": "FP64", "data": [0.0] * 22}], N, 10)
    with pytest.raises(InvalidModelInput, match="INT64 needs an integer"):
        decode_v2_inputs([{"name": "t", "shape": [1, 2], "datatype": "INT64", "data": [1, 2.5]}], N, 10)
    with pytest.raises(InvalidModelInput, match="categorical"):
        decode_v2_inputs([{"name": "t", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}], F, 10)
    with pytest.raises(InvalidModelInput, match="1 rows, but the first tensor has 2"):
        decode_v2_inputs([{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]},
                          {"name": "y", "shape": [1], "datatype": "FP64", "data": [1]}], N, 10)
