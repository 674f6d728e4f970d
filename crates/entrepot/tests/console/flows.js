// The console's user stories, one flow each, run by tests/console.rs between
// the steps it takes with real clients (skopeo, pip). Settings come in the
// CONSOLE_TEST environment variable as JSON; a flow's result is printed as
// one `RESULT {json}` line.
'use strict';

const {
  launch,
  signInWithToken,
  signInWithPassword,
  expectText,
  expectNone,
  clipboard,
  main,
  fail,
} = require('./browser');

const ACCESSOR = 'Secret Manager Secret Accessor';

/** A link of the side navigation. */
function nav(page, name) {
  return page.locator('nav.sidenav').getByRole('link', { name, exact: true });
}
const ACCESSOR_ROLE = 'roles/secretmanager.secretAccessor';

/** Allow an upstream host on the Access policy page. */
async function allowHost(page, host) {
  await nav(page, 'Access policy').click();
  await page.getByLabel('Host or *.domain').fill(host);
  await page.getByRole('button', { name: 'Add host' }).click();
  await expectText(page, '.notice', 'Host added to the allowlist.');
  await expectText(page, '#allowed-hosts td', host);
}

/** Create a secret with its first version on the Secret Manager pages. */
async function createSecret(b, id, value) {
  const { page } = b;
  await nav(page, 'Secret Manager').click();
  await page.getByRole('link', { name: 'Create secret' }).first().click();
  await page.getByLabel('Name', { exact: true }).fill(id);
  await page.getByLabel('Secret value').fill(value);
  await page.getByRole('button', { name: 'Create secret' }).click();
  await expectText(page, '.notice', 'Secret created.');
  await expectText(page, 'table.versions tr[data-version="1"]', 'ENABLED');
}

/** Tick the secret's checkbox, open the info panel, grant `role` to `member`. */
async function grantThroughInfoPanel(b, secret, member, roleTitle, shot) {
  const { page } = b;
  await nav(page, 'Secret Manager').click();
  await page.getByRole('checkbox', { name: `Select ${secret}` }).check();
  await page.getByRole('button', { name: 'Show info panel' }).click();
  const panel = page.locator('#info-panel');
  await panel.waitFor();
  await panel.getByRole('tab', { name: 'Permissions' }).click();
  await panel.getByText('Add principal').click();
  await panel.getByLabel('New principals').fill(member);
  const role = panel.getByLabel('Role');
  // The drop-down groups roles by service.
  const group = await role.locator('optgroup[label="Secret Manager"] option').allInnerTexts();
  if (!group.includes(roleTitle)) fail(`the Secret Manager group of the role picker holds ${group}`);
  await role.selectOption({ label: roleTitle });
  if (shot) await b.shot(shot);
  await panel.getByRole('button', { name: 'Save' }).click();
  await expectText(page, '.notice', 'Principal added.');
  await expectText(page, '#info-panel .binding', roleTitle);
  await expectText(page, '#info-panel .binding .member', member.replace(/^serviceAccount:/, ''));
}

const flows = {
  /** Test 1, before the grant: secret, remote repository, its authentication mode. */
  async docker_configure(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots, forbidden: [s.payload] });
    const { page } = b;
    await signInWithToken(page, s.token);

    // The project's service agent, copied with its button.
    await page.goto('/ui/projects/default');
    const agent = (await page.locator('#service-agent .copy-value').innerText()).trim();
    await page.locator('#service-agent').getByRole('button', { name: 'Copy' }).click();
    await expectText(page, '#service-agent .copy-button', 'Copied');
    const copied = await clipboard(page);
    if (copied !== agent) fail(`the copy button copied ${JSON.stringify(copied)}, not ${agent}`);
    await b.shot('project');

    await allowHost(page, s.upstream_host);
    await allowHost(page, s.token_host);

    await createSecret(b, s.secret, s.payload);

    // A remote repository of the private upstream, anonymous at first.
    await nav(page, 'Artifact Registry').click();
    await page.getByRole('link', { name: 'Create repository' }).first().click();
    await page.getByLabel('Name', { exact: true }).fill(s.repository);
    await page.getByLabel('Docker').check();
    await page.getByLabel('Remote (a pull-through cache of an upstream)').check();
    await page.getByLabel('Upstream', { exact: true }).selectOption('URL');
    await page.getByLabel('Custom upstream URL').fill(`http://${s.upstream_host}`);
    await page.getByRole('button', { name: 'Create' }).click();
    await expectText(page, '.notice', 'Repository created.');

    // Edit repository → Remote repository authentication mode.
    await page.getByRole('link', { name: 'Edit repository' }).click();
    const auth = page.locator('fieldset', { hasText: 'Remote repository authentication mode' });
    await auth.getByLabel('Username and password').check();
    await auth.getByLabel('Username', { exact: true }).fill(s.username);
    const version = `projects/default/secrets/${s.secret}/versions/1`;
    await auth.getByLabel(/Secret version/).selectOption(version);
    await b.shot('edit-repository');
    await page.getByRole('button', { name: 'Save' }).click();
    await expectText(page, '.notice', 'Repository updated.');
    await expectText(page, 'dl.facts dd', version);
    await b.close();
    return { agent };
  },

  /** Test 1, after the failed pull: the warning, the grant through the info panel. */
  async docker_grant(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots, forbidden: [s.payload] });
    const { page } = b;
    await signInWithToken(page, s.token);
    await page.goto(`/ui/projects/default/repositories/${s.repository}`);
    const warning = page.locator('.alert-warning');
    await expectText(page, '.alert-warning', 'cannot read');
    const text = await warning.innerText();
    for (const needle of [s.secret, ACCESSOR, ACCESSOR_ROLE, s.agent.replace(/^serviceAccount:/, '')]) {
      if (!text.includes(needle)) fail(`the credential warning does not name ${needle}: ${text}`);
    }
    await warning.getByRole('button', { name: 'Grant access' }).waitFor();
    await b.shot('repository-agent-cannot-read');
    await nav(page, 'Artifact Registry').click();
    await expectText(page, '#repositories td', 'Agent cannot read secret');

    await grantThroughInfoPanel(b, s.secret, s.agent, ACCESSOR, 'secret-info-panel');

    await page.goto(`/ui/projects/default/repositories/${s.repository}`);
    await expectNone(page, page.locator('.alert-warning'), 'the credential warning');
    await page.getByRole('button', { name: 'Test upstream' }).click();
    await expectText(page, '#upstream-report', 'Test upstream: OK');
    await b.shot('test-upstream');
    await b.phoneShot(`/ui/projects/default/repositories/${s.repository}`, 'repository-phone');

    // The value, only on the explicit view, which is audited.
    await page.goto(`/ui/projects/default/secrets/${s.secret}`);
    b.revealing(true);
    await page.getByRole('button', { name: 'View secret value' }).click();
    await expectText(page, '.secret-value', s.payload);
    b.revealing(false);
    await page.goto(`/ui/projects/default/audit?resource=projects/default/secrets/${s.secret}&outcome=denied`);
    await expectText(page, '#audit-log td', s.agent.replace(/^serviceAccount:/, ''));
    await b.shot('audit-log');
    await b.close();
    return {};
  },

  /** Test 2: PyPI token as a secret, remote Python repository, Grant access button. */
  async python(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots, forbidden: [s.payload] });
    const { page } = b;
    await signInWithToken(page, s.token);
    await allowHost(page, s.upstream_host);
    await createSecret(b, s.secret, s.payload);
    await nav(page, 'Artifact Registry').click();
    await page.getByRole('link', { name: 'Create repository' }).first().click();
    await page.getByLabel('Name', { exact: true }).fill(s.repository);
    await page.getByLabel('Python').check();
    await page.getByLabel('Remote (a pull-through cache of an upstream)').check();
    await page.getByLabel('Upstream', { exact: true }).selectOption('URL');
    await page.getByLabel('Custom upstream URL').fill(`http://${s.upstream_host}/simple/`);
    const auth = page.locator('fieldset', { hasText: 'Remote repository authentication mode' });
    await auth.getByLabel('Username and password').check();
    await auth.getByLabel('Username', { exact: true }).fill('__token__');
    await auth.getByLabel(/Secret version/).selectOption(`projects/default/secrets/${s.secret}/versions/latest`);
    await page.getByRole('button', { name: 'Create' }).click();
    await expectText(page, '.notice', 'Repository created.');
    await expectText(page, '.alert-warning', ACCESSOR);
    await page.locator('.alert-warning').getByRole('button', { name: 'Grant access' }).click();
    await expectText(page, '.notice', 'Access granted to the service agent.');
    await expectNone(page, page.locator('.alert-warning'), 'the credential warning');
    await expectText(page, 'section.card', 'Install');
    await b.shot('python-repository');
    await b.close();
    return {};
  },

  /** Test 2, after pip install: the remote Python repository lists the cached file. */
  async python_cached(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots });
    const { page } = b;
    await signInWithToken(page, s.token);
    await page.goto(`/ui/projects/default/repositories/${s.repository}`);
    const row = page.locator(`table.cached tr[data-project="${s.project}"][data-version="${s.version}"]`);
    await row.waitFor();
    const file = row.locator(`.cached-file[data-filename="${s.filename}"]`);
    await file.waitFor();
    const digest = await file.locator('code.digest').getAttribute('title');
    if (digest !== s.sha256) fail(`the cached file shows ${digest}, not ${s.sha256}`);
    const size = (await row.locator('td.num').innerText()).trim();
    if (!/\d( B| KiB| MiB)$/.test(size)) fail(`the cached version's size is ${JSON.stringify(size)}`);
    const pulled = await row.locator('time.last-pull').getAttribute('datetime');
    if (pulled !== s.last_pull) fail(`the cached version shows the last pull ${pulled}, the API ${s.last_pull}`);
    await row.getByRole('button', { name: 'Copy' }).click();
    const command = await clipboard(page);
    await b.shot('python-remote-cache');
    await b.close();
    return { command };
  },

  /** Test 3, first step: create a hosted Docker repository. */
  async hosted_create(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots });
    const { page } = b;
    await signInWithToken(page, s.token);
    await nav(page, 'Artifact Registry').click();
    await page.getByRole('link', { name: 'Create repository' }).first().click();
    // A bad name is refused next to the field, keeping what was typed.
    await page.getByLabel('Name', { exact: true }).fill('Bad_Name');
    await page.locator('#repository-id').evaluate((e) => e.removeAttribute('pattern'));
    await page.getByRole('button', { name: 'Create' }).click();
    await page.locator('.field-error').first().waitFor();
    await page.getByLabel('Name', { exact: true }).fill(s.repository);
    await page.getByLabel('Docker').check();
    await page.getByLabel('Standard (hosted: you push to it)').check();
    await page.getByRole('button', { name: 'Create' }).click();
    await expectText(page, '.notice', 'Repository created.');
    await expectText(page, '.empty-state', 'No images yet');
    await b.close();
    return {};
  },

  /** Test 3, after the push: tags, sizes, digests, the pull command. */
  async hosted_view(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots });
    const { page } = b;
    await signInWithToken(page, s.token);
    await nav(page, 'Artifact Registry').click();
    await page.getByRole('link', { name: s.repository, exact: true }).click();
    const row = page.locator(`table.tags[data-image="${s.image}"] tr[data-tag="${s.tag}"]`);
    await row.waitFor();
    const digest = await row.locator('code.digest').getAttribute('title');
    if (digest !== s.digest) fail(`the page shows digest ${digest}, not ${s.digest}`);
    const size = (await row.locator('td.num').innerText()).trim();
    if (!/(KiB|MiB)$/.test(size)) fail(`the size column shows ${JSON.stringify(size)}`);
    await row.getByRole('button', { name: 'Copy' }).click();
    const command = await clipboard(page);
    await b.shot('hosted-repository');
    await b.phoneShot(page.url(), 'hosted-repository-phone');
    await b.close();
    return { command, size };
  },

  /** A secret's versions: disable, enable and destroy, each after its confirmation; the API agrees. */
  async secret_versions(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots, forbidden: [s.payload, s.payload2] });
    const { page } = b;
    const api = async (path) => {
      const r = await page.request.get(`/v1/projects/default/secrets/${s.secret}${path}`, {
        headers: { authorization: `Bearer ${s.token}` },
      });
      if (!r.ok()) fail(`GET ${path} answered ${r.status()}`);
      return r.json();
    };
    const apiState = async (v) => (await api(`/versions/${v}`)).state;
    const row = (v) => page.locator(`table.versions tr[data-version="${v}"]`);
    const expectState = async (v, state) => {
      await expectText(page, `table.versions tr[data-version="${v}"] .state`, state);
      const shown = (await row(v).locator('.state').innerText()).trim();
      if (shown !== state) fail(`version ${v} shows ${shown}, not ${state}`);
      const fromApi = await apiState(v);
      if (fromApi !== state) fail(`the page shows version ${v} ${state}, the API ${fromApi}`);
    };
    /** Click the row's `verb` link, check the confirmation page, confirm. */
    const change = async (v, verb, notice, shot) => {
      await row(v).getByRole('link', { name: verb, exact: true }).click();
      await expectText(page, 'h1', `${verb} version ${v} of ${s.secret}?`);
      if (shot) await b.shot(shot);
      await page.getByRole('button', { name: `${verb} version ${v}` }).click();
      await expectText(page, '.notice', notice);
    };

    await signInWithToken(page, s.token);
    await createSecret(b, s.secret, s.payload);
    // A second version, pasted into New version.
    await page.locator('#secret-value').fill(s.payload2);
    await page.getByRole('button', { name: 'Add new version' }).click();
    await expectText(page, '.notice', 'New version added');
    await expectState(2, 'ENABLED');

    // Disable version 1: confirmed, DISABLED on the page and in the API.
    await change(1, 'Disable', 'Version disabled.', 'secret-version-disable-confirm');
    await expectState(1, 'DISABLED');
    await expectNone(page, row(1).getByRole('button', { name: 'View secret value' }), 'View secret value of a disabled version');
    await expectNone(page, row(1).getByRole('link', { name: 'Disable', exact: true }), 'Disable of a disabled version');
    // Enable it again.
    await change(1, 'Enable', 'Version enabled.');
    await expectState(1, 'ENABLED');

    // Destroy version 2: Cancel first changes nothing.
    await row(2).getByRole('link', { name: 'Destroy', exact: true }).click();
    await expectText(page, '.confirm', 'cannot be undone');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await expectState(2, 'ENABLED');
    await change(2, 'Destroy', 'Version destroyed', 'secret-version-destroy-confirm');
    await expectState(2, 'DESTROYED');
    await expectNone(page, row(2).getByRole('link'), 'an action on a destroyed version');
    await expectNone(page, row(2).getByRole('button'), 'an action on a destroyed version');
    // latest is version 1 again.
    const latest = await api('/versions/latest');
    if (!String(latest.name).endsWith('/versions/1')) fail(`latest is ${latest.name} after version 2 was destroyed`);
    // Leave version 1 disabled for the test to check.
    await change(1, 'Disable', 'Version disabled.');
    await expectState(1, 'DISABLED');
    await b.shot('secret-versions');
    await b.phoneShot(`/ui/projects/default/secrets/${s.secret}`, 'secret-versions-phone');
    await b.close();
    return {};
  },

  /** A secret viewer is offered no state change; the confirmation and the post are refused. */
  async secret_versions_viewer(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots, forbidden: [s.payload, s.payload2] });
    const { page } = b;
    await signInWithPassword(page, s.username, s.password);
    await expectText(page, '.notice', 'Signed in.');
    await page.goto(`/ui/projects/default/secrets/${s.secret}`);
    await expectText(page, 'table.versions tr[data-version="1"] .state', 'DISABLED');
    for (const verb of ['Enable', 'Disable', 'Destroy']) {
      await expectNone(page, page.locator('table.versions').getByRole('link', { name: verb, exact: true }), verb);
    }
    await b.shot('secret-versions-viewer');
    const confirm = await page.request.get(`/ui/projects/default/secrets/${s.secret}/versions/1/enable`);
    if (confirm.status() !== 403) fail(`the confirmation page answered a viewer ${confirm.status()}`);
    const csrf = await page.locator('form.signout input[name=csrf]').inputValue();
    for (const action of ['enable', 'destroy']) {
      const forged = await page.request.post(`/ui/projects/default/secrets/${s.secret}/versions/1/${action}`, {
        form: { csrf },
        maxRedirects: 0,
      });
      if (forged.status() !== 403) fail(`a viewer's ${action} answered ${forged.status()}`);
    }
    await b.close();
    return {};
  },

  /** A reader of one project, without an organisation role: repositories with their last pull, images hosted and cached. */
  async project_reader(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots });
    const { page } = b;
    await signInWithPassword(page, s.username, s.password);
    await expectText(page, '.notice', 'Signed in.');
    await page.goto('/ui/projects/default/repositories');
    const headers = (await page.locator('#repositories thead th').allTextContents()).map((h) => h.trim());
    if (!headers.includes('Last pull')) fail(`the repositories list has no Last pull column: ${headers}`);
    const pulledRow = page.locator(`#repositories tr[data-repository="${s.hosted}"]`);
    const when = await pulledRow.locator('time.last-pull').getAttribute('datetime');
    if (when !== s.hosted_last_pull) fail(`the list shows ${s.hosted} last pulled at ${when}, the API ${s.hosted_last_pull}`);
    await expectText(page, `#repositories tr[data-repository="${s.unpulled}"] .last-pull`, 'Never');
    const pythonWhen = await page.locator(`#repositories tr[data-repository="${s.python_hosted}"] time.last-pull`).getAttribute('datetime');
    if (pythonWhen !== s.python_last_pull) fail(`the list shows ${s.python_hosted} last pulled at ${pythonWhen}, the API ${s.python_last_pull}`);
    await b.shot('repositories-last-pull');

    // The hosted repository's images, read with the reader's own permission.
    await page.getByRole('link', { name: s.hosted, exact: true }).click();
    const tag = page.locator(`table.tags[data-image="${s.image}"] tr[data-tag="${s.tag}"]`);
    await tag.waitFor();
    const digest = await tag.locator('code.digest').getAttribute('title');
    if (digest !== s.digest) fail(`the hosted page shows digest ${digest}, not ${s.digest}`);
    const pulled = await tag.locator('time.last-pull').getAttribute('datetime');
    if (pulled !== s.hosted_last_pull) fail(`the hosted page shows the last pull ${pulled}, the API ${s.hosted_last_pull}`);
    const other = page.locator(`table.tags[data-image="${s.image}"] tr[data-tag="${s.unpulled_tag}"]`);
    await expectText(page, `table.tags[data-image="${s.image}"] tr[data-tag="${s.unpulled_tag}"] .last-pull`, 'Never');
    if ((await other.count()) !== 1) fail('the unpulled tag is not listed');
    await b.shot('hosted-repository-reader');

    // The hosted Python repository's versions, with the last download.
    await page.goto(`/ui/projects/default/repositories/${s.python_hosted}`);
    const version = page.locator(`table.packages tr[data-project="${s.python_project}"][data-version="${s.python_version}"]`);
    await version.waitFor();
    const downloaded = await version.locator('time.last-pull').getAttribute('datetime');
    if (downloaded !== s.python_last_pull) fail(`the Python page shows the last pull ${downloaded}, the API ${s.python_last_pull}`);
    await b.shot('python-hosted-reader');

    // The remote repository's page: what its cache holds, with the pull command.
    await page.goto(`/ui/projects/default/repositories/${s.remote}`);
    const cached = page.locator(`table.tags[data-image="${s.remote_image}"] tr[data-tag="${s.remote_tag}"]`);
    await cached.waitFor();
    const cachedDigest = await cached.locator('code.digest').getAttribute('title');
    if (cachedDigest !== s.remote_digest) fail(`the remote page shows digest ${cachedDigest}, not ${s.remote_digest}`);
    const size = (await cached.locator('td.num').innerText()).trim();
    if (!/(KiB|MiB)$/.test(size)) fail(`the cached image's size is ${JSON.stringify(size)}`);
    const cachedPull = await cached.locator('time.last-pull').getAttribute('datetime');
    if (!cachedPull) fail('the cached image shows no last pull');
    await cached.getByRole('button', { name: 'Copy' }).click();
    const command = await clipboard(page);
    await b.shot('remote-repository-cache');
    await b.phoneShot(page.url(), 'remote-repository-cache-phone');
    await b.close();
    return { command };
  },

  /** Test 4: the access policy's allowlist and enforcement switch. */
  async access_policy(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots });
    const { page } = b;
    await signInWithToken(page, s.token);
    await nav(page, 'Access policy').click();
    await expectText(page, '#enforcement-state', 'Enforced');
    await page.getByLabel('Host or *.domain').fill('not a host!');
    await page.getByRole('button', { name: 'Add host' }).click();
    await page.locator('.field-error').first().waitFor();
    await allowHost(page, '*.example.com');
    await page.getByRole('button', { name: 'Switch to dry run' }).click();
    await expectText(page, '.notice', 'Enforcement changed.');
    await expectText(page, '#enforcement-state', 'Dry run');
    await b.shot('access-policy-dry-run');
    await page.getByRole('button', { name: 'Switch to enforce' }).click();
    await expectText(page, '#enforcement-state', 'Enforced');
    const row = page.locator('#allowed-hosts tr', { hasText: '*.example.com' });
    await row.getByRole('button', { name: 'Remove *.example.com' }).click();
    await expectText(page, '.notice', 'Host removed from the allowlist.');
    await expectNone(page, page.locator('#allowed-hosts td', { hasText: '*.example.com' }), 'the removed host');
    await b.phoneShot('/ui/access-policy', 'access-policy-phone');
    await b.close();
    return {};
  },

  /** Test 5: a reader sees no controls; forged and token-less posts are refused. */
  async reader(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots, forbidden: [s.payload] });
    const { page } = b;
    await signInWithPassword(page, s.username, s.password);
    await expectText(page, '.notice', 'Signed in.');
    await page.goto(`/ui/projects/default/repositories/${s.repository}`);
    await expectText(page, 'h1', s.repository);
    await expectNone(page, page.getByRole('link', { name: 'Edit repository' }), 'Edit repository');
    await expectNone(page, page.getByRole('button', { name: 'Grant access' }), 'Grant access');
    await expectNone(page, page.getByText('Add principal'), 'Add principal');
    await page.goto('/ui/projects/default/secrets');
    await expectNone(page, page.getByRole('link', { name: 'Create secret' }), 'Create secret');
    await page.getByRole('checkbox', { name: `Select ${s.secret}` }).check();
    await page.getByRole('button', { name: 'Show info panel' }).click();
    await page.locator('#info-panel').waitFor();
    await expectNone(page, page.locator('#info-panel').getByText('Add principal'), 'Add principal in the info panel');
    await expectNone(page, page.locator('#info-panel').getByRole('button', { name: /^Remove/ }), 'Remove principal');
    await page.goto(`/ui/projects/default/secrets/${s.secret}`);
    await expectNone(page, page.getByRole('button', { name: 'View secret value' }), 'View secret value');
    await expectNone(page, page.getByRole('link', { name: 'Destroy' }), 'Destroy');
    await expectNone(page, page.getByRole('button', { name: 'Add new version' }), 'New version');
    await b.shot('reader-secret');

    // A forged grant with the reader's own session and CSRF token: refused by IAM.
    const csrf = await page.locator('form.signout input[name=csrf]').inputValue();
    const forged = await page.request.post('/ui/iam/add', {
      form: {
        csrf,
        resource: `projects/default/secrets/${s.secret}`,
        principals: `user:${s.username}`,
        role: ACCESSOR_ROLE,
        return_to: '/ui/',
      },
      maxRedirects: 0,
    });
    if (forged.status() !== 403) fail(`a forged grant answered ${forged.status()}`);
    const forgedEdit = await page.request.post(`/ui/projects/default/repositories/${s.repository}/edit`, {
      form: { csrf, description: 'forged', auth: 'anonymous' },
      maxRedirects: 0,
    });
    if (forgedEdit.status() !== 403) fail(`a forged repository edit answered ${forgedEdit.status()}`);
    // The same form without its CSRF token: refused before anything is read.
    const noCsrf = await page.request.post('/ui/iam/add', {
      form: { resource: `projects/default/secrets/${s.secret}`, principals: 'allUsers', role: ACCESSOR_ROLE },
      maxRedirects: 0,
    });
    if (noCsrf.status() !== 403) fail(`a form without its CSRF token answered ${noCsrf.status()}`);
    const wrongCsrf = await page.request.post('/ui/signout', { form: { csrf: 'x'.repeat(43) }, maxRedirects: 0 });
    if (wrongCsrf.status() !== 403) fail(`a sign-out with a wrong CSRF token answered ${wrongCsrf.status()}`);

    // The security headers of a page.
    const response = await page.request.get('/ui/projects/default/secrets');
    const h = response.headers();
    const csp = h['content-security-policy'] || '';
    for (const part of ["script-src 'self'", "frame-ancestors 'none'"]) {
      if (!csp.includes(part)) fail(`the CSP lacks ${part}: ${csp}`);
    }
    if (csp.includes('unsafe-inline')) fail(`the CSP allows inline code: ${csp}`);
    if (h['x-content-type-options'] !== 'nosniff') fail('no X-Content-Type-Options: nosniff');
    if (!h['referrer-policy']) fail('no Referrer-Policy');

    // Sign out: the session is gone on the server, the cookie too.
    const cookie = (await b.context.cookies()).find((c) => c.name === 'entrepot_console');
    if (!cookie || !cookie.httpOnly || cookie.sameSite !== 'Strict') fail(`the session cookie is ${JSON.stringify(cookie)}`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(/\/ui\/signin/);
    await b.close();
    return { cookie: cookie.value };
  },

  /** Test 5, last: failed passwords are throttled like the API's. */
  async throttled(s) {
    const b = await launch({ base: s.base, screenshots: s.screenshots });
    const { page } = b;
    let last = '';
    for (let i = 0; i < 8; i += 1) {
      await signInWithPassword(page, s.username, 'wrong-password');
      last = await page.locator('.alert-error').innerText();
      if (/too many failed logins/.test(last)) break;
    }
    if (!/too many failed logins/.test(last)) fail(`eight wrong passwords were not throttled; the page says ${last}`);
    await b.shot('signin-throttled');
    await b.close();
    return {};
  },
};

main(flows);
