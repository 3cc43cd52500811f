def test_dbg(aws, publish, handler, models, events, lambda_context):
    publish("iris", models.iris)
    app = handler("BatchFunction")
    aws.s3.put_object(Bucket=aws.bucket, Key="batch/input/iris/day1.csv", Body=b"a,b\n1,2\n")
    print("RESULT", app.lambda_handler({"action": "run"}, lambda_context))
