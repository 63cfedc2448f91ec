"""The notification tests' side of moto's AWS server (tests/it/notify.rs), with boto3.

    moto_aws.py setup ENDPOINT
        An SQS queue behind an EventBridge rule on the default bus (source `trailsight`, both
        trailsight detail-types), an SNS topic with an SQS subscription; prints
        {"topic_arn", "bus_arn", "eventbridge_queue", "sns_queue"} as JSON.
    moto_aws.py drain ENDPOINT QUEUE_URL
        Every message in the queue (received until it is empty, then deleted); prints the bodies
        as a JSON list.
"""
import json
import sys

import boto3

REGION = "us-east-1"


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION,
              aws_access_key_id="testing", aws_secret_access_key="testing")
    return (boto3.client("sqs", **kw), boto3.client("events", **kw),
            boto3.client("sns", **kw), boto3.client("sts", **kw))


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def setup(endpoint):
    sqs, events, sns, sts = clients(endpoint)
    account = sts.get_caller_identity()["Account"]
    eb_url, eb_arn = queue(sqs, "insights-from-eventbridge")
    pattern = {"source": ["trailsight"],
               "detail-type": ["AWS Insight via CloudTrail", "trailsight Delivery Finding"]}
    events.put_rule(Name="trailsight-insights", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="trailsight-insights", Targets=[{"Id": "queue", "Arn": eb_arn}])
    sns_url, sns_arn = queue(sqs, "insights-from-sns")
    topic = sns.create_topic(Name="trailsight-insights")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=sns_arn)
    print(json.dumps({
        "topic_arn": topic,
        "bus_arn": f"arn:aws:events:{REGION}:{account}:event-bus/default",
        "eventbridge_queue": eb_url,
        "sns_queue": sns_url,
    }))


def drain(endpoint, url):
    sqs = clients(endpoint)[0]
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            break
        for m in messages:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    print(json.dumps(bodies))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"setup": setup, "drain": drain}[command](*args)
