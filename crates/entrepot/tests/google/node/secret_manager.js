// Google's Node.js Secret Manager client (@google-cloud/secret-manager)
// against entrepot, over its REST transport (`fallback: true`).
//
// The bodies of createSecret, addSecretVersion, accessSecretVersion and
// grantAccess are Google's published samples, unchanged but for how the
// client is built (pointed at entrepot, an entrepot token as credentials)
// and for not printing the payload.
//
// Reads ENTREPOT_HOST, ENTREPOT_PORT, ENTREPOT_TOKEN, PROJECT, SECRET and
// MEMBER from the environment. Prints one line per step, never a payload;
// exits non-zero on the first failure.
'use strict';

const assert = require('node:assert/strict');
const {SecretManagerServiceClient} = require('@google-cloud/secret-manager');
const {OAuth2Client} = require('google-auth-library');

function entrepotClient() {
  // An entrepot token is a bearer token: hand it to the client as an
  // OAuth2 access token that never needs refreshing.
  const authClient = new OAuth2Client();
  authClient.setCredentials({access_token: process.env.ENTREPOT_TOKEN});
  return new SecretManagerServiceClient({
    fallback: true,
    protocol: 'http',
    apiEndpoint: process.env.ENTREPOT_HOST,
    port: Number(process.env.ENTREPOT_PORT),
    authClient,
  });
}

const projectId = process.env.PROJECT;
const secretId = process.env.SECRET;
const member = process.env.MEMBER;
const parent = `projects/${projectId}`;
const name = `projects/${projectId}/secrets/${secretId}`;
const client = entrepotClient();

async function createSecret() {
  const [secret] = await client.createSecret({
    parent: parent,
    secretId: secretId,
    secret: {
      replication: {
        automatic: {},
      },
    },
  });
  console.info(`Created secret ${secret.name}`);
  return secret;
}

async function addSecretVersion(payload) {
  const [version] = await client.addSecretVersion({
    parent: name,
    payload: {
      data: payload,
    },
  });
  console.info(`Added secret version ${version.name}`);
  return version;
}

async function accessSecretVersion(versionName) {
  const [version] = await client.accessSecretVersion({
    name: versionName,
  });
  // Extract the payload as a string.
  const payload = version.payload.data.toString();
  return {version, payload};
}

async function grantAccess() {
  // Get the current IAM policy.
  const [policy] = await client.getIamPolicy({
    resource: name,
  });

  // Add the user with accessor permissions to the bindings list.
  policy.bindings.push({
    role: 'roles/secretmanager.secretAccessor',
    members: [member],
  });

  // Save the updated IAM policy.
  const [updated] = await client.setIamPolicy({
    resource: name,
    policy: policy,
  });

  console.log(`Updated IAM policy for ${name}`);
  return updated;
}

async function main() {
  const payload = Buffer.from('s3cr3t-from-node', 'utf8');
  const secret = await createSecret();
  assert.equal(secret.name, name);
  assert.ok(secret.replication.automatic, 'replication not reported back');

  const version = await addSecretVersion(payload);
  assert.equal(version.name, `${name}/versions/1`);
  assert.equal(version.state, 'ENABLED');

  const accessed = await accessSecretVersion(`${name}/versions/latest`);
  assert.equal(accessed.version.name, `${name}/versions/1`);
  assert.ok(accessed.payload === payload.toString(), 'payload differs');
  assert.ok(Number(accessed.version.payload.dataCrc32c) > 0, 'no dataCrc32c');
  console.info('Accessed latest: payload matches');

  const policy = await grantAccess();
  const accessors = policy.bindings.find(
    b => b.role === 'roles/secretmanager.secretAccessor'
  );
  assert.ok(accessors && accessors.members.includes(member), 'member not bound');
  console.info(`Policy binds ${member} to roles/secretmanager.secretAccessor`);

  // Labels through an update mask, then a filtered listing.
  const [labelled] = await client.updateSecret({
    secret: {name, labels: {env: 'prod'}},
    updateMask: {paths: ['labels']},
  });
  assert.equal(labelled.labels.env, 'prod');
  const [found] = await client.listSecrets({parent, filter: 'labels.env=prod'});
  assert.deepEqual(found.map(s => s.name), [name]);
  const [none] = await client.listSecrets({parent, filter: 'labels.env=dev'});
  assert.deepEqual(none, []);
  console.info('Labels updated and filtered on');

  const [versions] = await client.listSecretVersions({parent: name});
  assert.deepEqual(versions.map(v => v.name), [`${name}/versions/1`]);
  const [disabled] = await client.disableSecretVersion({name: version.name});
  assert.equal(disabled.state, 'DISABLED');
  await assert.rejects(accessSecretVersion(version.name), e => {
    assert.match(e.message, /DISABLED/);
    return true;
  });
  console.info('Disabled version refused');

  await client.deleteSecret({name});
  await assert.rejects(client.getSecret({name}), e => {
    assert.match(e.message, /not found/);
    return true;
  });
  console.info('Deleted secret');
}

main().catch(e => {
  console.error(`FAILED: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
