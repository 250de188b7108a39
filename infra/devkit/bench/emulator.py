"""Measures the emulator alone, one request at a time through boto3, the way the stack calls it:
SendMessage and receive(10) + DeleteMessageBatch(10) at a growing backlog, and the sync's two
conditional PutItems per event, as the tables grow. Runs each case against moto as the project
starts it (`moto_emulator.py`) and, with --plain, against the same without the project's patches
(MOTO_EMULATOR_PLAIN=1), side by side in one run. Prints a markdown table (ms per call).

    .venv/bin/python infra/devkit/bench/emulator.py [--backlog 1000] [--puts 2000] [--plain]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
EMULATOR = os.path.join(HERE, "..", "moto_emulator.py")
FIXTURE = os.path.join(HERE, "..", "..", "..", "tests", "fixtures", "clerk", "user.updated.json")


def start(plain: bool):
    env = dict(os.environ)
    if plain:
        env["MOTO_EMULATOR_PLAIN"] = "1"
    process = subprocess.Popen(
        [sys.executable, EMULATOR, "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    line = process.stdout.readline().decode()
    if not line.startswith("READY "):
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, f"http://127.0.0.1:{line.split()[1]}"


def client(service: str, endpoint: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local-dev-access-key",
        aws_secret_access_key="local-dev-secret-key",
    )


def ms(samples):
    return statistics.median(samples) * 1000.0


def sqs_case(endpoint: str, backlog: int):
    sqs = client("sqs", endpoint)
    dlq = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": "5"})
    queue = sqs.create_queue(
        QueueName="bench", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "180"}
    )["QueueUrl"]
    body = open(FIXTURE).read()
    results = {}
    for depth in sorted({0, backlog // 5, backlog}):
        while int(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]) < depth:
            sqs.send_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "MessageBody": body} for i in range(10)],
            )
        sends = []
        for i in range(20):
            t = time.perf_counter()
            sqs.send_message(
                QueueUrl=queue,
                MessageBody=body,
                MessageAttributes={"svix_id": {"DataType": "String", "StringValue": f"msg_{i}"}},
            )
            sends.append(time.perf_counter() - t)
        rounds = []
        for _ in range(2):
            t = time.perf_counter()
            got = sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if got:
                sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
                )
            rounds.append(time.perf_counter() - t)
        results[depth] = (ms(sends), ms(rounds))
    return results


def dynamodb_case(endpoint: str, puts: int):
    ddb = client("dynamodb", endpoint)
    ddb.create_table(
        TableName="users",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    ddb.create_table(
        TableName="log",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "svix_id", "AttributeType": "S"},
            {"AttributeName": "user_id", "AttributeType": "S"},
            {"AttributeName": "received_at", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "svix_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_user",
                "KeySchema": [
                    {"AttributeName": "user_id", "KeyType": "HASH"},
                    {"AttributeName": "received_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    samples = []
    for i in range(puts):
        user = f"user_{i % 500}"
        t = time.perf_counter()
        ddb.put_item(
            TableName="users",
            Item={"id": {"S": user}, "updated_at": {"N": str(i)}, "deleted": {"BOOL": False}, "last_svix_id": {"S": f"msg_{i}"}},
            ConditionExpression="attribute_not_exists(#id) OR (#d = :f AND (attribute_not_exists(#u) OR #u < :u))",
            ExpressionAttributeNames={"#id": "id", "#d": "deleted", "#u": "updated_at"},
            ExpressionAttributeValues={":f": {"BOOL": False}, ":u": {"N": str(i)}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        ddb.put_item(
            TableName="log",
            Item={"svix_id": {"S": f"msg_{i}"}, "user_id": {"S": user}, "received_at": {"N": str(i)}, "outcome": {"S": "applied"}},
            ConditionExpression="attribute_not_exists(#k) OR #o = :failed",
            ExpressionAttributeNames={"#k": "svix_id", "#o": "outcome"},
            ExpressionAttributeValues={":failed": {"S": "failed"}},
        )
        samples.append((time.perf_counter() - t) / 2)
    quarter = max(1, puts // 4)
    return [ms(samples[:quarter]), ms(samples[-quarter:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--plain", action="store_true", help="also measure moto without the project's patches")
    args = parser.parse_args()
    variants = [("patched", False)] + ([("plain", True)] if args.plain else [])
    rows = []
    for name, plain in variants:
        process, endpoint = start(plain)
        try:
            sqs = sqs_case(endpoint, args.backlog)
            ddb = dynamodb_case(endpoint, args.puts)
        finally:
            process.stdin.close()
            process.wait(timeout=30)
        for depth, (send, round_trip) in sqs.items():
            rows.append((name, f"SendMessage at a backlog of {depth}", send))
            rows.append((name, f"receive(10) + delete(10) at a backlog of {depth}", round_trip))
        rows.append((name, f"conditional PutItem, first {args.puts // 4} of {args.puts}", ddb[0]))
        rows.append((name, f"conditional PutItem, last {args.puts // 4} of {args.puts}", ddb[1]))
    print("| moto | call | median ms |")
    print("|---|---|---|")
    for name, call, value in rows:
        print(f"| {name} | {call} | {value:.2f} |")


if __name__ == "__main__":
    main()
