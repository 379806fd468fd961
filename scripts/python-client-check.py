"""A client generated from docs/openapi.yaml in a second language (Python, by openapi-python-client), used as an
Android or web team would use theirs, without edits: enrol, activate an offer by a push, pull until the feed has
nothing more, and read what came back. Usage: python-client-check.py PACKAGE_DIR SERVER_URL"""

import datetime
import sys
import uuid

sys.path.insert(0, sys.argv[1])
from loyalty_sync_server_client import Client  # noqa: E402
from loyalty_sync_server_client.api.auth import enroll  # noqa: E402
from loyalty_sync_server_client.api.sync import pull, push  # noqa: E402
from loyalty_sync_server_client.models import (  # noqa: E402
    ActivateOffer,
    EnrollRequest,
    MutationEnvelope,
    PullRequest,
    PushRequest,
    Session,
)

server = sys.argv[2]
client = Client(base_url=server)
session = enroll.sync(
    client=client,
    loyalty_protocol="1",
    body=EnrollRequest(
        name="Python Client", email=f"python-{uuid.uuid4().hex[:8]}@example.de", password="correct horse"
    ),
)
assert isinstance(session, Session), f"enrolment answered {session!r}"
device = client.with_headers({"Authorization": f"Bearer {session.access_token}"})

# Everything the member may see, page after page, until the feed has nothing more.
changes, cursor = [], 0
while True:
    page = pull.sync(client=device, loyalty_protocol="1", body=PullRequest(device_id=session.device_id, cursor=cursor))
    assert page is not None and hasattr(page, "changes"), f"pull answered {page!r}"
    changes += page.changes
    cursor = page.cursor
    if not page.has_more:
        break
offers = [change for change in changes if str(change.kind.value) == "offer"]
assert offers, "the feed carries the programme's offers"
offer_id = offers[0].id
# Every entity is typed: the generated class of its kind (`lot` -> LotEntity), with its fields as attributes.
for change in changes:
    if change.deleted:
        continue
    kind = str(change.kind.value)
    expected = kind[0].upper() + kind[1:] + "Entity"
    assert type(change.entity).__name__ == expected, f"a {kind} came as {type(change.entity).__name__}"
assert all(isinstance(change.entity.title, str) for change in offers), "an offer's title is a typed field"

answer = push.sync(
    client=device,
    loyalty_protocol="1",
    body=PushRequest(
        device_id=session.device_id,
        mutations=[
            MutationEnvelope(
                sequence=1,
                stamp="1",
                device_time=datetime.datetime.now(datetime.timezone.utc),
                mutation=ActivateOffer(kind="activateOffer", offer_id=offer_id),
            )
        ],
    ),
)
assert answer is not None and hasattr(answer, "results"), f"push answered {answer!r}"
status = answer.results[0].status.value
assert answer.last_processed_sequence == 1, answer
print(f"python client: enrolled {session.member_id}, pulled {len(changes)} changes, pushed one mutation ({status})")
