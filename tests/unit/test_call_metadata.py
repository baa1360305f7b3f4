import json
import uuid

from agent.call_metadata import parse_call_metadata


def test_dispatch_metadata_is_parsed() -> None:
    call_id, profile_id = uuid.uuid4(), uuid.uuid4()
    meta = parse_call_metadata(
        json.dumps(
            {"channel": "web", "call_id": str(call_id), "profile_id": str(profile_id), "firebase_uid": "u1"}
        )
    )
    assert meta is not None and meta.call_id == call_id and meta.profile_id == profile_id


def test_missing_or_bad_metadata_means_no_call_record() -> None:
    assert parse_call_metadata(None) is None
    assert parse_call_metadata("not json") is None
    assert parse_call_metadata(json.dumps({"channel": "fax", "call_id": str(uuid.uuid4())})) is None
