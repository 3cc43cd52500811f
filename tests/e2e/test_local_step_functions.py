"""A batch input over ``MaxBatchFileBytes`` goes Plan -> S3 ItemReader -> chunks -> Finalize locally.

A second ``modelsync local`` runs with ``--parameter-overrides MaxBatchFileBytes=1024``: its scheduled
Batch run hands the input to the template's state machine, which moto's ASL interpreter executes with its
Lambda tasks in the stack's own process. The session stack (default limit, 256 MiB) scores the same
bytes as one file; both outputs must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import FEATURES, Stack, launch_stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("local-stack")]

MODEL = "flowersbig"
LIMIT = 1024  # MaxBatchFileBytes' MinValue
INPUT = f"batch/input/{MODEL}/big.csv"


@pytest.fixture(scope="module")
def small_limit_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with launch_stack(tmp_path_factory.mktemp("sfn") / "modelsync-local.log",
                      "--parameter-overrides", f"MaxBatchFileBytes={LIMIT}") as s:
        yield s


@pytest.fixture(scope="module")
def big_csv(iris: tuple[Any, Any]) -> bytes:
    """Every iris row, and two bad ones: well over the limit."""
    X, _ = iris
    lines = [",".join(FEATURES)] + [",".join(repr(float(v)) for v in row) for row in X.to_numpy()]
    lines[10] = "5.1,x,1.4,0.2"
    lines[77] = "6.0,3.0,,"
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > LIMIT
    return body


def _publish(stack: Stack, doc: dict[str, Any]) -> None:
    stack.client("s3").put_object(Bucket=stack.bucket, Key=f"incoming/{MODEL}/model.json",
                                  Body=json.dumps(doc).encode())
    wait_for(f"{MODEL} published on {stack.api}",
             lambda: stack.http("GET", f"/models/{MODEL}").status == 200, timeout=30)


def _scored(stack: Stack, body: bytes) -> dict[str, Any]:
    """Put the input, wait for the scheduled run's manifest; returns it with the output and errors bytes."""
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.bucket, Key=INPUT, Body=body)
    prefix = f"batch/output/{MODEL}/big.v1"

    def manifest() -> Any:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket, Prefix=prefix).get("Contents", [])]
        return f"{prefix}.manifest.json" in keys and json.loads(
            s3.get_object(Bucket=stack.bucket, Key=f"{prefix}.manifest.json")["Body"].read())

    found = wait_for(f"{prefix}.manifest.json on {stack.api}", manifest, timeout=60)
    for suffix in (".csv", ".errors.jsonl"):
        found[suffix] = s3.get_object(Bucket=stack.bucket, Key=prefix + suffix)["Body"].read()
    return dict(found)


def test_input_over_the_limit_runs_the_distributed_map(small_limit_stack: Stack, stack: Stack,
                                                        iris_model: Any, iris: tuple[Any, Any],
                                                        big_csv: bytes) -> None:
    from modelsync.export import export_model

    doc = export_model(iris_model, iris[0].iloc[::10], name=MODEL)
    for s in (small_limit_stack, stack):
        _publish(s, doc)
    distributed = _scored(small_limit_stack, big_csv)
    whole = _scored(stack, big_csv)
    # the state machine ran on the small-limit stack: one execution, succeeded, Finalize wrote the manifest
    sfn = small_limit_stack.client("stepfunctions")
    (machine,) = sfn.list_state_machines()["stateMachines"]
    (execution,) = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])["key"] == INPUT
    assert distributed["mode"] == "distributed" and distributed["chunks"] >= 1
    assert whole.get("mode") != "distributed"
    assert (distributed["rows"], distributed["scored"], distributed["errors"]) == (150, 148, 2)
    # and its merged output is what scoring the same rows as one file gives, byte for byte
    assert distributed[".csv"] == whole[".csv"] and distributed[".csv"].count(b"\n") == 149
    assert distributed[".errors.jsonl"] == whole[".errors.jsonl"]
    assert [json.loads(line)["line"] for line in distributed[".errors.jsonl"].splitlines()] == [11, 78]
