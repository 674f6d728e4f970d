//! A secret's versions and their states: add, look up, list, enable, disable,
//! destroy.

use super::*;

impl SecretService {
    /// Add a version holding `payload`; it becomes the `latest`.
    pub async fn add_version(
        &self,
        principal: &Principal,
        name: &SecretName,
        payload: &SecretPayload,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(principal, Permission::VersionsAdd, &secret_resource(name))
            .await?;
        let record = self.require_secret(name).await?;
        let version = self.insert_version(name, payload).await?;
        tracing::info!(version = %version.name, %principal, "secret version added");
        self.rotate_schedule(name, &record).await?;
        Ok(version)
    }

    /// A version added while a rotation is due is the rotation: the schedule
    /// moves on (see [`super::settings`]).
    async fn rotate_schedule(
        &self,
        name: &SecretName,
        record: &SecretRecord,
    ) -> Result<(), SecretError> {
        let now = self.clock.now_unix();
        let mut settings = super::settings::settings_of(record)?;
        let Some(rotation) = settings.rotation.as_ref() else {
            return Ok(());
        };
        if super::settings::due_rotation(&settings, now).is_none() {
            return Ok(());
        }
        settings.rotation = Some(super::settings::rotated(rotation, now));
        settings.rotation_due_audited = None;
        let rotated = SecretRecord {
            settings: super::settings::settings_text(&settings)?,
            etag: super::settings::new_etag(),
            ..record.clone()
        };
        if self.store.update_secret(&rotated, &record.etag).await? {
            tracing::info!(secret = %name, "secret rotated: its next rotation time moved on");
        } else {
            // Changed meanwhile (another version, an update): that writer's
            // view wins; the rotation stays due until the next version.
            tracing::info!(secret = %name, "secret changed while rotating; schedule left as it is");
        }
        Ok(())
    }

    /// A version's metadata; `latest` resolves to the newest enabled version.
    pub async fn get_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsGet,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        version_from_record(&name.secret, record)
    }

    /// One page of the versions of a secret, newest first; the cursor is a
    /// version number (the page holds the versions below it).
    pub async fn list_versions(
        &self,
        principal: &Principal,
        name: &SecretName,
        page: &PageRequest<i64>,
    ) -> Result<Page<SecretVersion, i64>, SecretError> {
        self.access
            .authorize(principal, Permission::VersionsList, &secret_resource(name))
            .await?;
        self.require_secret(name).await?;
        let rows = self
            .store
            .list_versions(name, page.after, page.limit())
            .await?;
        Page::from_rows(rows, page, |v| v.number)
            .try_map(|record| version_from_record(name, record))
    }

    /// Make a disabled version accessible again; fails on a destroyed version.
    pub async fn enable_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.set_state(principal, name, VersionState::Enabled).await
    }

    /// Keep a version but refuse access to it; fails on a destroyed version.
    pub async fn disable_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.set_state(principal, name, VersionState::Disabled)
            .await
    }

    /// Wipe a version's payload for good; the version stays listed as DESTROYED.
    pub async fn destroy_version(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsManage,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        let secret = &name.secret;
        self.store
            .destroy_version(secret, record.number, &self.clock.now_rfc3339())
            .await?;
        tracing::info!(version = %number_name(secret, record.number), %principal, "secret version destroyed");
        self.version_by_number(secret, record.number).await
    }

    pub(super) async fn set_state(
        &self,
        principal: &Principal,
        name: &SecretVersionName,
        state: VersionState,
    ) -> Result<SecretVersion, SecretError> {
        self.access
            .authorize(
                principal,
                Permission::VersionsManage,
                &secret_resource(&name.secret),
            )
            .await?;
        let record = self.resolve(name).await?;
        let secret = &name.secret;
        if !self
            .store
            .set_version_state(secret, record.number, state.as_str())
            .await?
        {
            return Err(SecretError::VersionDestroyed(
                number_name(secret, record.number).to_string(),
            ));
        }
        tracing::info!(version = %number_name(secret, record.number), %principal, %state, "secret version state changed");
        self.version_by_number(secret, record.number).await
    }

    pub(super) async fn insert_version(
        &self,
        name: &SecretName,
        payload: &SecretPayload,
    ) -> Result<SecretVersion, SecretError> {
        let project = name.project.as_str();
        let secret = name.secret.as_str();
        // The number is part of the associated data, so it is chosen before sealing;
        // a concurrent add takes the number first and this one retries with the next.
        for _ in 0..16 {
            let number = self.store.next_version_number(name).await?;
            let version_name = number_name(name, number).to_string();
            let sealed = crypto::seal(self.keys.as_ref(), &version_name, payload)?;
            let record = VersionRecord {
                project: project.to_owned(),
                secret: secret.to_owned(),
                number,
                state: VersionState::Enabled.as_str().to_owned(),
                create_time: self.clock.now_rfc3339(),
                destroy_time: None,
            };
            match self.store.insert_version(&record, &sealed).await {
                Ok(()) => return version_from_record(name, record),
                Err(StoreError::AlreadyExists) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Corrupt(format!(
            "could not allocate a version number for {name} under contention"
        ))
        .into())
    }

    pub(super) async fn resolve(
        &self,
        name: &SecretVersionName,
    ) -> Result<VersionRecord, SecretError> {
        let secret = &name.secret;
        self.require_secret(secret).await?;
        match name.version {
            VersionId::Latest => self
                .store
                .latest_enabled_version(secret)
                .await?
                .ok_or_else(|| SecretError::NoEnabledVersion(secret.to_string())),
            VersionId::Number(n) => self
                .store
                .get_version(secret, n as i64)
                .await?
                .ok_or_else(|| SecretError::VersionNotFound(name.to_string())),
        }
    }

    pub(super) async fn version_by_number(
        &self,
        secret: &SecretName,
        number: i64,
    ) -> Result<SecretVersion, SecretError> {
        let record = self
            .store
            .get_version(secret, number)
            .await?
            .ok_or_else(|| SecretError::VersionNotFound(number_name(secret, number).to_string()))?;
        version_from_record(secret, record)
    }
}
