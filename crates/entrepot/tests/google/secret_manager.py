"""Google's Python Secret Manager client (google-cloud-secret-manager) against
entrepot, over its REST transport.

The bodies of `create_secret`, `add_secret_version`, `access_secret_version`
and `iam_grant_access` are Google's published samples, unchanged but for how
the client is built: pointed at entrepot, with an entrepot token as the
credentials.

Reads ENTREPOT_ENDPOINT (http://127.0.0.1:PORT), ENTREPOT_TOKEN, PROJECT,
SECRET, MEMBER (a service account) and MEMBER_TOKEN (its token) from the
environment. Prints one line per step; never prints a
payload. Exits non-zero (with a traceback) on the first failure.
"""

import os
import sys

import google.oauth2.credentials
import google_crc32c
from google.api_core import exceptions
from google.cloud import secretmanager

ENDPOINT = os.environ["ENTREPOT_ENDPOINT"]
TOKEN = os.environ["ENTREPOT_TOKEN"]


def entrepot_client(token: str = TOKEN) -> secretmanager.SecretManagerServiceClient:
    """A client that speaks REST to entrepot with an entrepot token."""
    credentials = google.oauth2.credentials.Credentials(token)
    return secretmanager.SecretManagerServiceClient(
        credentials=credentials,
        transport="rest",
        client_options={"api_endpoint": ENDPOINT},
    )


def create_secret(project_id: str, secret_id: str):
    client = entrepot_client()
    parent = f"projects/{project_id}"
    response = client.create_secret(
        request={
            "parent": parent,
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}},
        }
    )
    print(f"Created secret: {response.name}")
    return response


def add_secret_version(project_id: str, secret_id: str, payload: str):
    client = entrepot_client()
    parent = client.secret_path(project_id, secret_id)
    payload_bytes = payload.encode("UTF-8")
    crc32c = google_crc32c.Checksum()
    crc32c.update(payload_bytes)
    response = client.add_secret_version(
        request={
            "parent": parent,
            "payload": {
                "data": payload_bytes,
                "data_crc32c": int(crc32c.hexdigest(), 16),
            },
        }
    )
    print(f"Added secret version: {response.name}")
    return response


def access_secret_version(project_id: str, secret_id: str, version_id: str):
    client = entrepot_client()
    name = f"projects/{project_id}/secrets/{secret_id}/versions/{version_id}"
    response = client.access_secret_version(request={"name": name})
    crc32c = google_crc32c.Checksum()
    crc32c.update(response.payload.data)
    if response.payload.data_crc32c != int(crc32c.hexdigest(), 16):
        print("Data corruption detected.")
        return response
    # The sample prints the payload here; this script must not.
    return response


def iam_grant_access(project_id: str, secret_id: str, member: str):
    client = entrepot_client()
    name = client.secret_path(project_id, secret_id)
    policy = client.get_iam_policy(request={"resource": name})
    policy.bindings.add(role="roles/secretmanager.secretAccessor", members=[member])
    new_policy = client.set_iam_policy(request={"resource": name, "policy": policy})
    print(f"Updated IAM policy on {secret_id}")
    return new_policy


def main() -> int:
    project = os.environ["PROJECT"]
    secret = os.environ["SECRET"]
    member = os.environ["MEMBER"]
    payload = "s3cr3t-from-python"

    created = create_secret(project, secret)
    assert created.name == f"projects/{project}/secrets/{secret}", created.name
    assert created.replication.automatic is not None
    assert "automatic" in type(created.replication).to_dict(created.replication)

    version = add_secret_version(project, secret, payload)
    assert version.name == f"projects/{project}/secrets/{secret}/versions/1", version.name
    assert version.state == secretmanager.SecretVersion.State.ENABLED, version.state

    accessed = access_secret_version(project, secret, "latest")
    assert accessed.name.endswith("/versions/1"), accessed.name
    assert accessed.payload.data_crc32c, "no dataCrc32c in the access response"
    assert accessed.payload.data == payload.encode("UTF-8"), "payload differs"
    print("Accessed latest: payload and dataCrc32c match")

    new_policy = iam_grant_access(project, secret, member)
    roles = {b.role: list(b.members) for b in new_policy.bindings}
    assert member in roles.get("roles/secretmanager.secretAccessor", []), roles
    print(f"Policy binds {member} to roles/secretmanager.secretAccessor")

    # A second get-modify-set on the same policy: the library decodes the
    # etag it read and encodes it again, so it must survive that round trip.
    again = iam_grant_access(project, secret, "user:second@example.com")
    members = {m for b in again.bindings for m in b.members}
    assert {member, "user:second@example.com"} <= members, members
    print("A second grant on the same policy is accepted")

    # The member now reads the payload with its own token.
    as_member = entrepot_client(os.environ["MEMBER_TOKEN"])
    read = as_member.access_secret_version(request={"name": version.name})
    assert read.payload.data == payload.encode("UTF-8"), "payload differs"
    print("The member reads the version with its own token")

    client = entrepot_client()
    fetched = client.get_secret(request={"name": created.name})
    assert fetched.name == created.name
    names = [s.name for s in client.list_secrets(request={"parent": f"projects/{project}"})]
    assert created.name in names, names
    versions = list(client.list_secret_versions(request={"parent": created.name}))
    assert [v.name for v in versions] == [version.name], versions

    # A corrupted checksum is refused and nothing is added.
    try:
        client.add_secret_version(
            request={
                "parent": created.name,
                "payload": {"data": b"other", "data_crc32c": 12345},
            }
        )
        raise AssertionError("a payload with a wrong dataCrc32c was accepted")
    except exceptions.BadRequest as e:
        assert "dataCrc32c" in e.message, e.message
        print(f"Wrong checksum refused: {e.code}")

    disabled = client.disable_secret_version(request={"name": version.name})
    assert disabled.state == secretmanager.SecretVersion.State.DISABLED, disabled.state
    try:
        client.access_secret_version(request={"name": version.name})
        raise AssertionError("a disabled version was readable")
    except exceptions.PreconditionFailed as e:
        assert "DISABLED" in e.message, e.message
        print(f"Disabled version refused: {e.code}")
    enabled = client.enable_secret_version(request={"name": version.name})
    assert enabled.state == secretmanager.SecretVersion.State.ENABLED, enabled.state

    try:
        client.get_secret(request={"name": f"projects/{project}/secrets/no-such-secret"})
        raise AssertionError("a missing secret was found")
    except exceptions.NotFound as e:
        print(f"Missing secret: {e.code}")

    client.delete_secret(request={"name": created.name})
    print("Deleted secret")
    return 0


if __name__ == "__main__":
    sys.exit(main())
