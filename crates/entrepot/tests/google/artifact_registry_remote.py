"""Google's Artifact Registry client (REST transport) against entrepot.

Stores the upstream password with Google's Secret Manager client (create the
secret, add a version, the `iam_grant_access` sample for the project's service
agent), creates a remote Docker repository whose upstream credentials are that
secret version, reads, lists and patches it (its description, then its
cleanup policies), manages its IAM policy, and creates and
deletes a second repository, checking each answer. Settings come from the
environment: ENTREPOT_ENDPOINT (http://127.0.0.1:PORT), ENTREPOT_TOKEN,
ENTREPOT_PROJECT, UPSTREAM_URI, UPSTREAM_USERNAME, UPSTREAM_PASSWORD,
SECRET_ID, SERVICE_AGENT (the project's service agent member),
READER (an IAM member to grant roles/artifactregistry.reader) and
READER_TOKEN (that member's access token).
"""

import os

from google.api_core import exceptions
from google.cloud import artifactregistry_v1 as ar
from google.cloud import secretmanager
from google.oauth2.credentials import Credentials
from google.protobuf import duration_pb2, field_mask_pb2

env = os.environ
client = ar.ArtifactRegistryClient(
    credentials=Credentials(env["ENTREPOT_TOKEN"]),
    transport="rest",
    client_options={"api_endpoint": env["ENTREPOT_ENDPOINT"]},
)
secrets = secretmanager.SecretManagerServiceClient(
    credentials=Credentials(env["ENTREPOT_TOKEN"]),
    transport="rest",
    client_options={"api_endpoint": env["ENTREPOT_ENDPOINT"]},
)
secret = secrets.create_secret(
    request={
        "parent": f"projects/{env['ENTREPOT_PROJECT']}",
        "secret_id": env["SECRET_ID"],
        "secret": {"replication": {"automatic": {}}},
    }
)
version = secrets.add_secret_version(
    request={"parent": secret.name, "payload": {"data": env["UPSTREAM_PASSWORD"].encode()}}
)
# Google's iam_grant_access sample: get the policy, add the member, set it.
secret_policy = secrets.get_iam_policy(request={"resource": secret.name})
secret_policy.bindings.add(
    role="roles/secretmanager.secretAccessor", members=[env["SERVICE_AGENT"]]
)
secrets.set_iam_policy(request={"resource": secret.name, "policy": secret_policy})
password_secret_version = version.name

parent = f"projects/{env['ENTREPOT_PROJECT']}/locations/europe-west1"
name = f"{parent}/repositories/private"
Remote = ar.RemoteRepositoryConfig
Credentials_ = Remote.UpstreamCredentials

# Create: a long-running operation, already done, whose result is the repository.
operation = client.create_repository(
    parent=parent,
    repository_id="private",
    repository=ar.Repository(
        format_=ar.Repository.Format.DOCKER,
        mode=ar.Repository.Mode.REMOTE_REPOSITORY,
        description="a private upstream",
        remote_repository_config=Remote(
            description="loopback registry",
            docker_repository=Remote.DockerRepository(
                custom_repository=Remote.DockerRepository.CustomRepository(
                    uri=env["UPSTREAM_URI"]
                )
            ),
            upstream_credentials=Credentials_(
                username_password_credentials=Credentials_.UsernamePasswordCredentials(
                    username=env["UPSTREAM_USERNAME"],
                    password_secret_version=password_secret_version,
                )
            ),
        ),
    ),
)
created = operation.result(timeout=30)
assert operation.done()
assert created.name == name, created.name
assert created.format_ == ar.Repository.Format.DOCKER, created.format_
assert created.mode == ar.Repository.Mode.REMOTE_REPOSITORY, created.mode
config = created.remote_repository_config
assert config.docker_repository.custom_repository.uri == env["UPSTREAM_URI"], config
credentials = config.upstream_credentials.username_password_credentials
assert credentials.username == env["UPSTREAM_USERNAME"], credentials
assert credentials.password_secret_version == password_secret_version, credentials
assert created.create_time.year >= 2024, created.create_time

# The operation can be read back.
again = client.get_operation(request={"name": operation.operation.name})
assert again.done, again

# Get and list.
got = client.get_repository(name=name)
assert got.description == "a private upstream", got
# Nothing pulled yet: sizeBytes (an int64, sent as a string) parses as 0.
assert got.size_bytes == 0, got.size_bytes
listed = [r.name for r in client.list_repositories(parent=parent)]
assert name in listed, listed

# Patch with an update mask: only the description changes.
patched = client.update_repository(
    repository=ar.Repository(name=name, description="renamed"),
    update_mask=field_mask_pb2.FieldMask(paths=["description"]),
)
assert patched.description == "renamed", patched
assert (
    patched.remote_repository_config.upstream_credentials.username_password_credentials.username
    == env["UPSTREAM_USERNAME"]
), patched

# Cleanup policies and their dry-run flag, set with an update mask, read back.
Policy = ar.CleanupPolicy
Condition = ar.CleanupPolicyCondition
with_policies = client.update_repository(
    repository=ar.Repository(
        name=name,
        cleanup_policies={
            "old-untagged": Policy(
                id="old-untagged",
                action=Policy.Action.DELETE,
                condition=Condition(
                    tag_state=Condition.TagState.UNTAGGED,
                    older_than=duration_pb2.Duration(seconds=86400),
                ),
            ),
            "keep-5": Policy(
                id="keep-5",
                action=Policy.Action.KEEP,
                most_recent_versions=ar.CleanupPolicyMostRecentVersions(keep_count=5),
            ),
        },
        cleanup_policy_dry_run=True,
    ),
    update_mask=field_mask_pb2.FieldMask(paths=["cleanup_policies", "cleanup_policy_dry_run"]),
)
assert with_policies.cleanup_policy_dry_run, with_policies
old = client.get_repository(name=name).cleanup_policies["old-untagged"]
assert old.action == Policy.Action.DELETE, old
assert old.condition.tag_state == Condition.TagState.UNTAGGED, old
assert old.condition.older_than.total_seconds() == 86400, old
assert with_policies.cleanup_policies["keep-5"].most_recent_versions.keep_count == 5, with_policies
assert with_policies.description == "renamed", with_policies

# IAM: read the policy, add a reader, read it back, test permissions.
policy = client.get_iam_policy(request={"resource": name})
policy.bindings.add(role="roles/artifactregistry.reader", members=[env["READER"]])
written = client.set_iam_policy(request={"resource": name, "policy": policy})
assert any(
    b.role == "roles/artifactregistry.reader" and env["READER"] in b.members
    for b in written.bindings
), written
assert client.get_iam_policy(request={"resource": name}).etag == written.etag
held = client.test_iam_permissions(
    request={
        "resource": name,
        "permissions": ["artifactregistry.repositories.get", "artifactregistry.repositories.delete"],
    }
)
assert set(held.permissions) == {
    "artifactregistry.repositories.get",
    "artifactregistry.repositories.delete",
}, held

# The reader, granted by that policy, may read the repository but not delete it.
as_reader = ar.ArtifactRegistryClient(
    credentials=Credentials(env["READER_TOKEN"]),
    transport="rest",
    client_options={"api_endpoint": env["ENTREPOT_ENDPOINT"]},
)
assert as_reader.get_repository(name=name).name == name
try:
    as_reader.delete_repository(name=name).result(timeout=30)
    raise AssertionError("the reader deleted the repository")
except exceptions.Forbidden as e:
    # 403 PERMISSION_DENIED, naming what is missing.
    assert "artifactregistry.repositories.delete" in e.message, e.message

# Errors arrive as google.rpc.Status and become the library's exceptions.
try:
    client.get_repository(name=f"{parent}/repositories/missing")
    raise AssertionError("a missing repository was found")
except exceptions.NotFound:
    pass
try:
    client.create_repository(
        parent=parent,
        repository_id="private",
        repository=ar.Repository(format_=ar.Repository.Format.DOCKER),
    ).result(timeout=30)
    raise AssertionError("a repository was created twice")
except exceptions.Conflict as e:
    # 409 ALREADY_EXISTS, as Google answers it.
    assert "already exists" in e.message, e.message
    pass
try:
    client.update_repository(
        repository=ar.Repository(name=name, labels={"team": "a"}),
        update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
    )
    raise AssertionError("labels were accepted")
except exceptions.BadRequest:
    pass

# A standard Python repository, created and deleted.
scratch = client.create_repository(
    parent=parent,
    repository_id="scratch",
    repository=ar.Repository(
        format_=ar.Repository.Format.PYTHON,
        mode=ar.Repository.Mode.STANDARD_REPOSITORY,
    ),
).result(timeout=30)
assert scratch.format_ == ar.Repository.Format.PYTHON, scratch
client.delete_repository(name=scratch.name).result(timeout=30)
try:
    client.get_repository(name=scratch.name)
    raise AssertionError("the deleted repository is still there")
except exceptions.NotFound:
    pass
print("artifact registry client: ok")
