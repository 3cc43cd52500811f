"""modelsync.template: the reader (cfn-lint's decoder, the resolver), and what template.yaml promises."""

from __future__ import annotations

import json
import pathlib

import pytest

from modelsync import template as tpl
from modelsync.local.resources import state_machine_definition

ROOT = pathlib.Path(__file__).resolve().parents[2]
T = tpl.load(ROOT / "template.yaml")


def test_short_form_tags_become_long_form():
    doc = tpl.loads("""
A: !Ref X
B: !GetAtt Res.Arn
C: !Sub "arn:${AWS::Partition}:s3:::${Bucket}/*"
D: !If [Cond, !Ref Y, !Ref AWS::NoValue]
E: !Join [",", [a, !Select [0, !Split ["-", "x-y"]]]]
F: !Equals [!Ref P, v]
G: !GetAtt [Res, StreamArn]
""")
    assert doc["A"] == {"Ref": "X"}
    assert doc["B"] == {"Fn::GetAtt": ["Res", "Arn"]}
    assert doc["C"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${Bucket}/*"}
    assert doc["D"] == {"Fn::If": ["Cond", {"Ref": "Y"}, {"Ref": "AWS::NoValue"}]}
    assert doc["E"]["Fn::Join"][1][1] == {"Fn::Select": [0, {"Fn::Split": ["-", "x-y"]}]}
    assert doc["G"] == {"Fn::GetAtt": ["Res", "StreamArn"]}


def test_resolver_evaluates_intrinsics_and_conditions():
    t = tpl.Template(tpl.loads("""
Parameters:
  Mode: {Type: String, Default: A}
Conditions:
  IsA: !Equals [!Ref Mode, A]
Resources:
  Bucket: {Type: AWS::S3::Bucket}
"""))
    r = tpl.Resolver(t, refs={"Bucket": "b1"}, attrs={("Bucket", "Arn"): "arn:aws:s3:::b1"})
    value = {"k": tpl.loads("v: !If [IsA, !Sub '${Bucket}-${AWS::Region}', other]")["v"],
             "gone": {"Fn::If": ["IsA", {"Ref": "AWS::NoValue"}, 1]},
             "list": [{"Fn::If": ["IsA", {"Ref": "AWS::NoValue"}, 1]}, 2],
             "sub": {"Fn::Sub": "${AWS::AccountId}:${Bucket.Arn}:${!Literal}"},
             "att": {"Fn::GetAtt": ["Bucket", "Arn"]}}
    assert r.resolve(value) == {"k": "b1-us-east-1", "list": [2], "att": "arn:aws:s3:::b1",
                                "sub": "123456789012:arn:aws:s3:::b1:${Literal}"}
    assert tpl.Resolver(t, parameters={"Mode": "B"}).condition("IsA") is False
    with pytest.raises(tpl.TemplateError):
        r.resolve({"Ref": "Missing"})
    with pytest.raises(tpl.TemplateError, match="does not use it"):
        r.resolve({"Fn::Join": [",", ["a"]]})


def test_malformed_template_is_refused():
    with pytest.raises(tpl.TemplateError):
        tpl.loads("Resources: [unclosed")


def test_globals_merge_into_functions():
    env = T.function_environment("PublishFunction")
    assert env["IDEMPOTENCY_TABLE"] == {"Ref": "IdempotencyTable"}  # the function's own
    assert env["REGISTRY_TABLE"] == {"Ref": "RegistryTable"}  # from Globals
    props = T.properties("ScoreFunction")
    assert props["Runtime"] == "python3.11" and props["Architectures"] == ["arm64"]
    assert props["Tracing"] == "Active" and props["Layers"] == [{"Ref": "ScorerLayer"}]


def test_physical_names_fit_the_sample_events():
    assert tpl.physical_name("ModelsBucket") == "modelsync-models"
    assert tpl.physical_name("RegistryTable") == "modelsync-registry"
    assert tpl.physical_name("NotifyDeadLetterQueue") == "modelsync-notify-dead-letter"
    assert tpl.declared_name(T, "ModelsBucket") == "modelsync-models"  # the parameter's default


def test_every_function_environment_resolves():
    refs = {lid: tpl.physical_name(lid) for lid in T.resources}
    r = tpl.Resolver(T, refs=refs)
    for lid in T.functions():
        env = r.function_environment(lid)
        assert all(isinstance(v, str) and v for v in env.values()), (lid, env)
        assert {"MODELS_BUCKET", "REGISTRY_TABLE", "EVENTS_TOPIC_ARN", "POWERTOOLS_SERVICE_NAME",
                "MAX_UPLOAD_BYTES", "MAX_ROWS_PER_REQUEST", "MAX_REQUEST_BYTES",
                "MAX_BATCH_FILE_BYTES"} <= set(env)


def test_publish_is_wired_to_incoming_uploads():
    (event,) = T.function_events("PublishFunction", "S3").values()
    assert event["Properties"]["Bucket"] == {"Ref": "ModelsBucket"}
    assert event["Properties"]["Filter"] == {"S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"},
                                                                {"Name": "suffix", "Value": ".json"}]}}


def test_notify_stream_settings():
    (event,) = T.function_events("NotifyFunction", "DynamoDB").values()
    p = event["Properties"]
    assert p["StartingPosition"] == "LATEST" and p["BisectBatchOnFunctionError"] is True
    assert p["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and 0 < p["MaximumRetryAttempts"] <= 10
    destination = p["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["NotifyDeadLetterQueue", "Arn"]}


def test_registry_table_and_bucket_settings():
    table = T.resource("RegistryTable")["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert {k["AttributeName"] for k in table["KeySchema"]} == {"pk", "sk"}
    bucket = T.resource("ModelsBucket")["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (stmt,) = T.resource("ModelsBucketPolicy")["Properties"]["PolicyDocument"]["Statement"]
    assert stmt["Effect"] == "Deny" and stmt["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def _policy_actions(policies: list) -> list[tuple[str, object]]:
    out = []
    for p in policies:
        if isinstance(p, dict) and "Statement" in p:
            for s in p["Statement"]:
                for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]):
                    out.append((a, s["Resource"]))
        elif isinstance(p, dict):
            (name, args), = p.items()
            out.append((name, args))
    return out


def test_no_function_can_delete_from_the_registry():
    registry_refs = ({"Ref": "RegistryTable"}, {"Fn::GetAtt": ["RegistryTable", "Arn"]})
    for lid, props in T.functions().items():
        for action, resource in _policy_actions(props.get("Policies", [])):
            on_registry = resource in registry_refs or resource == {"TableName": {"Ref": "RegistryTable"}}
            assert not (on_registry and (action in ("DynamoDBCrudPolicy", "dynamodb:*")
                                         or action == "dynamodb:DeleteItem")), (lid, action)


def test_auth_mode_conditions():
    auth = T.resource("ScoreApi")["Properties"]["Auth"]
    for mode, expected in (("IAM", {"DefaultAuthorizer": "AWS_IAM"}),
                           ("API_KEY", {"ApiKeyRequired": True}),
                           ("COGNITO", {"DefaultAuthorizer": "CognitoAuthorizer"})):
        r = tpl.Resolver(T, refs={}, attrs=lambda lid, a: f"arn:{lid}:{a}", parameters={"AuthMode": mode})
        resolved = r.resolve(auth)
        assert expected.items() <= resolved.items(), (mode, resolved)
        assert r.resource_enabled("ScoreUserPool") is (mode == "COGNITO")
    # health routes are open in every mode, alias writes always IAM
    events = T.function_events("ScoreFunction", "Api")
    for mode in ("IAM", "API_KEY", "COGNITO"):
        r = tpl.Resolver(T, parameters={"AuthMode": mode})
        for name, ev in events.items():
            a = r.resolve(ev["Properties"].get("Auth"))
            if name.startswith("Health"):
                assert a in ({"Authorizer": "NONE"}, {"ApiKeyRequired": False})
            elif ev["Properties"]["Method"] in ("PUT", "DELETE"):
                assert a["Authorizer"] == "AWS_IAM"


def test_state_machine_definition_uses_the_batch_function():
    r = tpl.Resolver(T, attrs={("BatchFunction", "Arn"): "arn:fn"})
    definition = state_machine_definition(r, T.properties("BatchStateMachine"))
    text = json.dumps(definition)
    assert "${" not in text and text.count("arn:fn") == 3
    chunks = definition["States"]["ScoreChunks"]
    assert chunks["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    # moto's ASL grammar (the local stack runs this machine) refuses 0, which is the default anyway
    assert "ToleratedFailurePercentage" not in chunks


def test_manifest_signing_key_is_narrow():
    key = T.resource("ManifestSigningKey")
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    props = key["Properties"]
    assert (props["KeySpec"], props["KeyUsage"]) == ("ECC_NIST_P256", "SIGN_VERIFY")
    admin, score = props["KeyPolicy"]["Statement"]
    # the account administers the key but cannot sign with it; the Score function's role signs, only
    assert not {"kms:Sign", "kms:*", "kms:Verify"} & set(admin["Action"])
    assert score["Principal"] == {"AWS": {"Fn::GetAtt": ["ScoreFunctionRole", "Arn"]}}
    assert sorted(score["Action"]) == ["kms:GetPublicKey", "kms:Sign"]
    assert score["Condition"]["StringEqualsIfExists"]["kms:SigningAlgorithm"] == "ECDSA_SHA_256"
    env = T.function_environment("ScoreFunction")
    assert env["MANIFEST_SIGNING_KEY_ID"] == {"Ref": "ManifestSigningKey"}
    for lid in ("PublishFunction", "NotifyFunction", "BatchFunction"):
        assert "MANIFEST_SIGNING_KEY_ID" not in T.function_environment(lid)


def test_operator_routes_need_iam_and_telemetry_puts_are_confined():
    operator = {("PUT", "/models/{name}/aliases/{alias}"), ("DELETE", "/models/{name}/aliases/{alias}"),
                ("POST", "/models/{name}/aliases/{alias}/promote"),
                ("POST", "/models/{name}/aliases/{alias}/rollback"),
                ("POST", "/models/{name}/versions/{version}/approve"), ("GET", "/models/{name}/telemetry"),
                ("GET", "/models/{name}/metrics"),
                ("GET", "/models/{name}/drift")}
    for mode in ("IAM", "API_KEY", "COGNITO"):
        r = tpl.Resolver(T, parameters={"AuthMode": mode})
        for ev in T.function_events("ScoreFunction", "Api").values():
            p = ev["Properties"]
            auth = r.resolve(p.get("Auth")) or {}
            assert (auth.get("Authorizer") == "AWS_IAM") == ((p["Method"], p["Path"]) in operator), (mode, p)
    policies = T.properties("ScoreFunction")["Policies"]
    statements = [s for p in policies if "Statement" in p for s in p["Statement"]]
    (put,) = [s for s in statements if "dynamodb:PutItem" in s["Action"]]
    assert put["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TELEMETRY#*"]}}


def test_telemetry_never_reaches_notify_and_expires():
    (event,) = T.function_events("NotifyFunction", "DynamoDB").values()
    (flt,) = event["Properties"]["FilterCriteria"]["Filters"]
    not_telemetry = {"S": [{"anything-but": ["telemetry"]}]}
    assert json.loads(flt["Pattern"]) == {"dynamodb": {"NewImage": {"kind": not_telemetry}}}
    table = T.resource("RegistryTable")["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert T.parameters["RequireApproval"]["Default"] == "false"
