"""The S3 transport against a real S3 server on loopback (moto's), and raw sockets for the faults."""

import socket
import threading
import uuid

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from django.core.files.base import ContentFile
from moto.server import ThreadedMotoServer

from integrations import errors
from integrations.models import IntegrationLog
from integrations.transports.s3 import S3Client, TracedS3Storage, provider_error

ACCESS_KEY_ID = "AKIAEISHROTEST000001"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEISHROKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEISHROSESSIONTOKEN0001"
LOG_FIELDS = ("endpoint", "request_headers", "request_body", "response_headers", "response_body", "error_message")


@pytest.fixture(scope="module")
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def admin_client(url, service="s3"):
    # moto refuses R2's "auto" region when creating a bucket: set things up as us-east-1.
    return boto3.client(service, region_name="us-east-1", endpoint_url=url, aws_access_key_id="setup",
                        aws_secret_access_key="setup")


@pytest.fixture
def bucket(moto_url):
    name = f"eishro-{uuid.uuid4().hex[:12]}"
    admin_client(moto_url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def r2(make_provider, moto_url, bucket):
    def make(base_url=moto_url, credentials=None, **configuration):
        return make_provider(
            base_url=base_url,
            configuration={"bucket": bucket, "retries": 0, "backoff": 0, "circuit_breaker_threshold": 2,
                           **configuration},
            credentials=credentials or {"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY},
        )

    return make


def rows(provider):
    return list(IntegrationLog.objects.filter(integration=provider).order_by("started_at"))


def test_put_get_list_delete_round_trip_is_traced_with_operation_names(r2, bucket):
    provider = r2()
    s3 = S3Client(provider)
    s3.put("reports/2026/a.pdf", b"%PDF-OBJECT-CONTENTS", "application/pdf")
    assert s3.get("reports/2026/a.pdf") == b"%PDF-OBJECT-CONTENTS"
    assert s3.list("reports/") == ["reports/2026/a.pdf"]
    s3.delete("reports/2026/a.pdf")
    assert s3.list("reports/") == []

    log = rows(provider)
    assert [row.operation for row in log] == ["s3.PutObject", "s3.GetObject", "s3.ListObjectsV2", "s3.DeleteObject",
                                              "s3.ListObjectsV2"]
    assert {row.transport for row in log} == {"s3"}
    assert {row.status for row in log} == {"success"}
    put, get, listing = log[0], log[1], log[2]
    assert (put.method, put.response_status) == ("PUT", 200)
    assert put.endpoint.endswith(f"/{bucket}/reports/2026/a.pdf")
    # Objects appear by their size only; the listing (XML) as the provider wrote it.
    assert put.request_body == "[20 bytes]"
    assert get.response_body == "[20 bytes]"
    assert "<ListBucketResult" in listing.response_body and "<Size>20</Size>" in listing.response_body
    assert not any("PDF-OBJECT" in str(getattr(row, field)) for row in log for field in LOG_FIELDS)
    provider.refresh_from_db()
    assert (provider.total_requests, provider.successful_requests) == (5, 5)


def test_credentials_never_appear_in_a_log_row_even_when_the_provider_echoes_them(r2):
    provider = r2(credentials={"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
                               "session_token": SESSION_TOKEN})
    s3 = S3Client(provider)
    # The secret in what we send (a header, an XML body) and in what the provider sends back (the
    # metadata echoed by HeadObject, an XML listing of keys).
    s3.put(f"notes/{SECRET_ACCESS_KEY}", b"contents", Metadata={"note": f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"})
    head = s3.client.head_object(Bucket=s3.bucket, Key=f"notes/{SECRET_ACCESS_KEY}")
    assert head["Metadata"]["note"] == f"{ACCESS_KEY_ID}:{SECRET_ACCESS_KEY}"
    s3.list("notes/")
    s3.client.delete_objects(Bucket=s3.bucket, Delete={"Objects": [{"Key": f"notes/{SECRET_ACCESS_KEY}"}]})
    s3.client.put_bucket_tagging(Bucket=s3.bucket, Tagging={"TagSet": [{"Key": "owner", "Value": SECRET_ACCESS_KEY}]})

    log = rows(provider)
    assert [row.operation for row in log] == ["s3.PutObject", "s3.HeadObject", "s3.ListObjectsV2",
                                              "s3.DeleteObjects", "s3.PutBucketTagging"]
    assert "x-amz-meta-note" in {name.lower() for name in log[1].response_headers}
    assert "<Delete" in log[3].request_body
    assert "<Value>[REDACTED]</Value>" in log[4].request_body
    for row in log:
        # SigV4's Authorization carries the access key id (Credential=) and a signature: all of it goes.
        assert row.request_headers["Authorization"] == "AWS4-HMAC-SHA256 [REDACTED]"
        assert row.request_headers["X-Amz-Security-Token"] == "[REDACTED]"
        for field in LOG_FIELDS:
            text = str(getattr(row, field))
            assert ACCESS_KEY_ID not in text and SECRET_ACCESS_KEY not in text, (row.operation, field)
            assert SESSION_TOKEN not in text, (row.operation, field)
            assert "Signature=" not in text and "Credential=" not in text


def test_a_wrong_secret_is_an_auth_error_and_not_an_outage(r2, moto_url):
    iam = admin_client(moto_url, "iam")
    user = f"r2-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    wrong = {"access_key_id": key["AccessKeyId"], "secret_access_key": "not-" + key["SecretAccessKey"]}
    provider = r2(credentials=wrong)
    s3 = S3Client(provider)
    requests.post(f"{moto_url}/moto-api/reset-auth", data=b"0", timeout=5)  # moto checks signatures from now on
    try:
        for _ in range(3):
            with pytest.raises(errors.ProviderAuthError) as caught:
                s3.get("anything")
            assert (caught.value.status_code, caught.value.sent) == (403, True)
            assert "SignatureDoesNotMatch" in caught.value.provider_message
    finally:
        requests.post(f"{moto_url}/moto-api/reset-auth", data=b"inf", timeout=5)
    assert s3.tracer.breaker.state == "closed"
    assert {row.error_code for row in rows(provider)} == {"SignatureDoesNotMatch"}
    assert not any(key["AccessKeyId"] in str(getattr(row, f)) for row in rows(provider) for f in LOG_FIELDS)


def test_a_missing_key_is_a_validation_error_and_leaves_the_breaker_closed(r2):
    provider = r2()
    s3 = S3Client(provider, retries=2)
    for _ in range(3):  # more than the breaker's threshold (2), and never retried
        with pytest.raises(errors.ProviderValidationError) as caught:
            s3.get("no/such/key")
        assert (caught.value.status_code, caught.value.sent) == (404, True)
        assert caught.value.provider_message.startswith("NoSuchKey")
    assert s3.tracer.breaker.state == "closed"
    log = rows(provider)
    assert [(row.operation, row.status, row.error_code, row.response_status) for row in log] == [
        ("s3.GetObject", "error", "NoSuchKey", 404)] * 3
    assert "<Code>NoSuchKey</Code>" in log[0].response_body

    # The raw client raises botocore's error, traced all the same; provider_error maps it.
    with pytest.raises(ClientError) as caught:
        s3.client.head_object(Bucket=s3.bucket, Key="no/such/key")
    assert isinstance(provider_error(caught.value, s3.tracer), errors.ProviderValidationError)
    assert rows(provider)[-1].operation == "s3.HeadObject"


def test_a_stopped_server_is_unavailable_never_sent_and_opens_the_breaker(r2):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    server.stop()
    provider = r2(base_url=f"http://{host}:{port}")
    s3 = S3Client(provider, retries=1)

    with pytest.raises(errors.ProviderUnavailable) as caught:
        s3.put("a.txt", b"x")
    assert caught.value.sent is False
    log = rows(provider)
    assert [(row.operation, row.error_code) for row in log] == [("s3.PutObject", "connection")] * 2  # one retry
    # Two outages reach the threshold: the next call is not made at all.
    with pytest.raises(errors.CircuitOpen):
        s3.get("a.txt")
    assert len(rows(provider)) == 2


@pytest.fixture
def listener():
    """A TCP socket that accepts connections and never answers."""
    sock = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock, accepted
    sock.close()
    for conn in accepted:
        conn.close()


def test_a_lost_answer_is_an_unknown_outcome_for_a_write_and_unavailable_for_a_read(r2, listener):
    sock, accepted = listener
    provider = r2(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}", timeout=0.3, circuit_breaker_threshold=10)
    s3 = S3Client(provider, retries=1)

    with pytest.raises(errors.UnknownOutcome) as caught:  # the raw client: a write we cannot vouch for
        s3.client.put_object(Bucket=s3.bucket, Key="a.txt", Body=b"x")
    assert caught.value.sent is True
    with pytest.raises(errors.ProviderUnavailable) as caught:
        s3.get("a.txt")
    assert caught.value.sent is True
    # S3Client.put retries it (the same bytes under the same key), then calls it unavailable.
    with pytest.raises(errors.ProviderUnavailable) as caught:
        s3.put("a.txt", b"x")
    assert not isinstance(caught.value, errors.UnknownOutcome)

    log = rows(provider)
    assert [(row.operation, row.status, row.error_code) for row in log] == [
        ("s3.PutObject", "timeout", "timeout"), ("s3.GetObject", "timeout", "timeout"),
        ("s3.GetObject", "timeout", "timeout"), ("s3.PutObject", "timeout", "timeout"),
        ("s3.PutObject", "timeout", "timeout")]
    assert len(accepted) == 5


def test_a_private_destination_is_refused_when_connecting(r2, listener, settings):
    sock, accepted = listener
    provider = r2(base_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    s3 = S3Client(provider, retries=2)
    settings.PROVIDER_URL_ALLOW_PRIVATE = False

    with pytest.raises(errors.ForbiddenDestination) as caught:
        s3.put("a.txt", b"x")
    assert caught.value.sent is False
    with pytest.raises(errors.ForbiddenDestination):
        TracedS3Storage(provider).save("a.txt", ContentFile(b"x"))
    assert accepted == []
    assert [row.operation for row in rows(provider)] == ["s3.PutObject", "s3.PutObject"]  # not retried


def test_an_s3_client_needs_both_keys_of_its_provider(r2):
    provider = r2(credentials={"access_key_id": ACCESS_KEY_ID})
    with pytest.raises(errors.ProviderAuthError) as caught:
        S3Client(provider)
    assert caught.value.sent is False


def test_traced_storage_save_open_round_trip(r2, bucket):
    provider = r2()
    storage = TracedS3Storage(provider)
    name = storage.save("uploads/receipt.txt", ContentFile(b"receipt 42"))
    assert name == "uploads/receipt.txt"
    with storage.open(name) as f:
        assert f.read() == b"receipt 42"
    assert storage.exists(name) and not storage.exists("uploads/missing.txt")  # a 404 is an answer
    storage.delete(name)
    assert admin_client(storage.endpoint_url).list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    log = rows(provider)
    operations = [row.operation for row in log]
    assert operations[0] == "s3.PutObject" and "s3.GetObject" in operations
    assert operations[-1] == "s3.DeleteObject"
    assert {row.transport for row in log} == {"s3"}
    assert [row.response_status for row in log if row.status == "error"] == [404]
    assert not any("receipt 42" in str(getattr(row, field)) for row in log for field in LOG_FIELDS)


def test_a_presigned_url_fetches_the_object_without_the_secret(r2):
    s3 = S3Client(r2())
    s3.put("shared.txt", b"for the customer")
    url = s3.presigned_url("shared.txt", expires=60)
    assert SECRET_ACCESS_KEY not in url and "X-Amz-Signature=" in url
    assert requests.get(url, timeout=5).content == b"for the customer"
