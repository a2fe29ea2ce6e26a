"""The Python baseline: the same trivial task on awslambdaric, boto3 and Powertools.

An S3 client is built at import, as Lambda guides recommend and as the Rust versions do at
start. Powertools decodes the key form-style (unquote_plus) and takes the bucket from the ARN.
"""

import boto3
from aws_lambda_powertools.utilities.data_classes import (
    S3BatchOperationEvent,
    S3BatchOperationResponse,
    event_source,
)

s3 = boto3.client("s3")


@event_source(data_class=S3BatchOperationEvent)
def lambda_handler(event: S3BatchOperationEvent, context):
    response = S3BatchOperationResponse(
        event.invocation_schema_version, event.invocation_id, "PermanentFailure"
    )
    task = event.task
    response.add_result(
        task.build_task_batch_response(
            "Succeeded", f"hello s3://{task.s3_bucket}/{task.s3_key}"
        )
    )
    return response.asdict()
