"""Step Functions locally: moto's ASL interpreter runs the template's state machines, Lambda tasks in-process.

moto executes a state machine (Task, Choice, Map with an S3 ``ItemReader`` ...) when its
``stepfunctions.execute_state_machine`` setting is on; otherwise an execution does nothing. Its
``lambda:invoke`` tasks call the Lambda API, where no function exists locally, so
:class:`LocalStepFunctions` also routes them to the :class:`~modelsync.local.runtime.Runtime`: the
template's Distributed Map (Plan -> chunks -> Finalize) runs the real Batch handler on this machine.
The same class serves ``modelsync local`` (moto's server) and the integration tests (``mock_aws``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from unittest import mock

from .runtime import FunctionSpec, Runtime

_CONFIG = "moto.core.config.default_user_config"
_LAMBDA_INVOKE = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils._invoke_lambda_function"
)
# Where the interpreter's own boto3 clients (S3 ItemReader, ...) look for the moto server.
_SERVER_PORT = "moto.stepfunctions.parser.asl.utils.boto_client.moto_server_port"


class LocalStepFunctions:
    """Turns execution on and sends ``lambda:invoke`` tasks to ``runtime`` while started.

    ``functions`` (logical id -> spec) is read at each task, so a caller may refill it. ``server_port``
    is the moto server's port (None inside ``mock_aws``, where moto intercepts boto3 itself). Start it
    before the state machines are created: moto keeps executable ones in a backend of their own.
    """

    def __init__(self, runtime: Runtime, functions: Mapping[str, FunctionSpec],
                 server_port: int | None = None) -> None:
        self.runtime = runtime
        self.functions = functions
        self._patches: list[Any] = [
            mock.patch.dict(_CONFIG, {"stepfunctions": {"execute_state_machine": True}}),
            mock.patch(_LAMBDA_INVOKE, self._invoke),
        ]
        if server_port is not None:
            self._patches.append(mock.patch(_SERVER_PORT, lambda: str(server_port)))
        self._started: list[Any] = []

    def start(self) -> None:
        for p in self._patches:
            p.start()
            self._started.append(p)

    def stop(self) -> None:
        while self._started:
            self._started.pop().stop()

    def _function(self, name: str) -> FunctionSpec | None:
        """By ARN (``DefinitionSubstitutions`` give ``!GetAtt Function.Arn``) or by physical name."""
        for spec in self.functions.values():
            if name in (spec.arn, spec.physical_name) or name.startswith(spec.arn + ":"):
                return spec
        return None

    def _invoke(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        """What moto's ``lambda_client.invoke(**parameters)`` would return, Payload already parsed."""
        from botocore.exceptions import ClientError

        name = str(parameters.get("FunctionName", ""))
        spec = self._function(name)
        if spec is None:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException",
                                         "Message": f"Function not found: {name}"},
                               "ResponseMetadata": {"HTTPStatusCode": 404, "RequestId": "local"}}, "Invoke")
        raw = parameters.get("Payload") or b"{}"
        inv = self.runtime.invoke(spec, json.loads(raw), trigger="StepFunctions lambda:invoke")
        response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        if inv.ok:
            response["Payload"] = inv.result
        else:
            response["FunctionError"] = "Unhandled"
            response["Payload"] = inv.error
        return response
