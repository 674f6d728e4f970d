//! A secret's settings beyond its labels: replication, annotations, expiry
//! and rotation, as they are validated on the way in, stored, and shown.
//!
//! - An expired secret is gone: the first request that finds it past its
//!   `expireTime` deletes it (payloads wiped) and is answered NOT_FOUND.
//! - A rotation is due once `rotation.nextRotationTime` has passed; the
//!   secret then shows `rotationDue`, and the first time it is seen due it is
//!   written to the audit log and counted in
//!   `entrepot_secret_rotations_due_total`. Adding a version rotates the
//!   secret: `nextRotationTime` moves on by `rotationPeriod` past now (or is
//!   cleared when there is no period).

use std::collections::BTreeMap;

use entrepot_domain::secret_settings::{parse_duration_secs, validate_annotations};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::*;

/// The shortest rotation period accepted, as Google's API has it (one hour).
pub const MIN_ROTATION_PERIOD_SECS: i64 = 3600;
/// The action written to the audit log when a rotation comes due.
pub const ROTATION_DUE_ACTION: &str = "secretmanager.secrets.rotationDue";

/// When a secret expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// At an RFC 3339 time (`expireTime`).
    At(String),
    /// This many seconds after the request (`ttl`).
    After(i64),
}

/// What a new secret carries besides its id.
#[derive(Debug, Clone, Default)]
pub struct NewSecret {
    /// Labels.
    pub labels: Labels,
    /// The replication policy.
    pub replication: Replication,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// When it expires, if ever.
    pub expiry: Option<Expiry>,
    /// Its rotation schedule, if any.
    pub rotation: Option<Rotation>,
}

/// An update: each field that is `Some` replaces that part of the secret
/// (the fields of an update mask); `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SecretChanges {
    /// New labels.
    pub labels: Option<Labels>,
    /// New annotations.
    pub annotations: Option<BTreeMap<String, String>>,
    /// A new expiry, or none.
    pub expiry: Option<Option<Expiry>>,
    /// A new rotation schedule, or none.
    pub rotation: Option<Option<Rotation>>,
}

/// Parse RFC 3339 text to Unix seconds.
pub(super) fn unix_of(text: &str, field: &str) -> Result<i64, SecretError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(OffsetDateTime::unix_timestamp)
        .map_err(|_| {
            SecretError::Invalid(SecretNameError::BadSetting(format!(
                "{field} {text:?} is not an RFC 3339 time such as 2030-01-31T12:00:00Z"
            )))
        })
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn bad(text: String) -> SecretError {
    SecretError::Invalid(SecretNameError::BadSetting(text))
}

/// The expiry as stored: an RFC 3339 time in the future.
pub(super) fn expire_time(expiry: &Expiry, now: i64) -> Result<String, SecretError> {
    let at = match expiry {
        Expiry::At(text) => unix_of(text, "expireTime")?,
        Expiry::After(secs) => now.saturating_add(*secs),
    };
    if at <= now {
        return Err(bad(format!(
            "the expiry time {} is not in the future",
            rfc3339(at)
        )));
    }
    Ok(rfc3339(at))
}

/// Check a rotation schedule: a period of at least an hour needs a next
/// rotation time; times are RFC 3339, normalised to UTC.
pub(super) fn checked_rotation(rotation: &Rotation) -> Result<Rotation, SecretError> {
    let next = rotation
        .next_rotation_time
        .as_deref()
        .map(|t| unix_of(t, "rotation.nextRotationTime").map(rfc3339))
        .transpose()?;
    let period = rotation
        .rotation_period
        .as_deref()
        .map(parse_duration_secs)
        .transpose()?;
    if let Some(p) = period {
        if p < MIN_ROTATION_PERIOD_SECS {
            return Err(bad(format!(
                "rotation.rotationPeriod is {p}s; the shortest is {MIN_ROTATION_PERIOD_SECS}s"
            )));
        }
        if next.is_none() {
            return Err(bad(
                "rotation.rotationPeriod needs rotation.nextRotationTime".to_owned(),
            ));
        }
    }
    Ok(Rotation {
        next_rotation_time: next,
        rotation_period: period.map(|p| format!("{p}s")),
    })
}

/// Read a record's settings document.
pub(super) fn settings_of(record: &SecretRecord) -> Result<SecretSettings, StoreError> {
    serde_json::from_str(&record.settings).map_err(|e| {
        StoreError::Corrupt(format!(
            "settings of projects/{}/secrets/{}: {e}",
            record.project, record.id
        ))
    })
}

/// Write a settings document.
pub(super) fn settings_text(settings: &SecretSettings) -> Result<String, StoreError> {
    serde_json::to_string(settings).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Whether the record is past its expiry time at `now`.
pub(super) fn is_expired(settings: &SecretSettings, now: i64) -> bool {
    settings
        .expire_time
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .is_some_and(|t| t.unix_timestamp() <= now)
}

/// The `nextRotationTime` that has passed at `now`, if any.
pub(super) fn due_rotation(settings: &SecretSettings, now: i64) -> Option<String> {
    let next = settings.rotation.as_ref()?.next_rotation_time.as_deref()?;
    let at = OffsetDateTime::parse(next, &Rfc3339).ok()?.unix_timestamp();
    (at <= now).then(|| next.to_owned())
}

/// The schedule after a rotation at `now`: the next time moves on by whole
/// periods until it is in the future, or is cleared without a period.
pub(super) fn rotated(rotation: &Rotation, now: i64) -> Rotation {
    let next = rotation
        .next_rotation_time
        .as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(OffsetDateTime::unix_timestamp);
    let period = rotation
        .rotation_period
        .as_deref()
        .and_then(|p| parse_duration_secs(p).ok())
        .filter(|p| *p > 0);
    let next_rotation_time = match (next, period) {
        (Some(next), Some(period)) if next <= now => {
            let periods = (now - next) / period + 1;
            Some(rfc3339(next.saturating_add(periods.saturating_mul(period))))
        }
        (Some(next), _) if next > now => Some(rfc3339(next)),
        _ => None,
    };
    Rotation {
        next_rotation_time,
        rotation_period: rotation.rotation_period.clone(),
    }
}

/// A new etag for a secret: quoted, as HTTP entity tags are.
pub(super) fn new_etag() -> String {
    format!("\"{}\"", crate::authn::new_token_id())
}

/// The secret as the API shows it, at `now`.
pub(super) fn secret_from_record(
    name: &SecretName,
    record: SecretRecord,
    now: i64,
) -> Result<Secret, SecretError> {
    let settings = settings_of(&record)?;
    let rotation_due = due_rotation(&settings, now).is_some();
    Ok(Secret {
        name: name.to_string(),
        replication: settings.replication,
        labels: Labels::new(record.labels).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        annotations: settings.annotations,
        create_time: record.create_time,
        etag: record.etag,
        expire_time: settings.expire_time,
        rotation: settings.rotation,
        rotation_due,
    })
}

/// Validate a new secret's settings into the stored document.
pub(super) fn new_settings(spec: &NewSecret, now: i64) -> Result<SecretSettings, SecretError> {
    spec.replication.validate()?;
    validate_annotations(&spec.annotations)?;
    Ok(SecretSettings {
        replication: spec.replication.clone(),
        annotations: spec.annotations.clone(),
        expire_time: spec
            .expiry
            .as_ref()
            .map(|e| expire_time(e, now))
            .transpose()?,
        rotation: spec.rotation.as_ref().map(checked_rotation).transpose()?,
        rotation_due_audited: None,
    })
}

/// Apply `changes` to stored settings and labels.
pub(super) fn apply(
    record: &SecretRecord,
    changes: &SecretChanges,
    now: i64,
) -> Result<SecretRecord, SecretError> {
    let mut settings = settings_of(record)?;
    if let Some(annotations) = &changes.annotations {
        validate_annotations(annotations)?;
        settings.annotations = annotations.clone();
    }
    if let Some(expiry) = &changes.expiry {
        settings.expire_time = expiry.as_ref().map(|e| expire_time(e, now)).transpose()?;
    }
    if let Some(rotation) = &changes.rotation {
        settings.rotation = rotation.as_ref().map(checked_rotation).transpose()?;
        settings.rotation_due_audited = None;
    }
    Ok(SecretRecord {
        labels: changes
            .labels
            .as_ref()
            .map_or_else(|| record.labels.clone(), |l| l.as_map().clone()),
        settings: settings_text(&settings)?,
        etag: new_etag(),
        ..record.clone()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T0: i64 = 1_900_000_000; // 2030-03-17T17:46:40Z

    #[test]
    fn rotation_moves_on_by_whole_periods_past_now() {
        let r = Rotation {
            next_rotation_time: Some(rfc3339(T0)),
            rotation_period: Some("3600s".into()),
        };
        assert_eq!(rotated(&r, T0 - 1).next_rotation_time, Some(rfc3339(T0)));
        assert_eq!(rotated(&r, T0).next_rotation_time, Some(rfc3339(T0 + 3600)));
        assert_eq!(
            rotated(&r, T0 + 7200 + 5).next_rotation_time,
            Some(rfc3339(T0 + 3 * 3600))
        );
        let once = Rotation {
            rotation_period: None,
            ..r
        };
        assert_eq!(rotated(&once, T0).next_rotation_time, None);
    }

    #[test]
    fn schedules_and_expiries_are_checked() {
        let short = Rotation {
            next_rotation_time: Some(rfc3339(T0)),
            rotation_period: Some("60s".into()),
        };
        assert!(checked_rotation(&short).is_err());
        let no_time = Rotation {
            next_rotation_time: None,
            rotation_period: Some("7200s".into()),
        };
        assert!(checked_rotation(&no_time).is_err());
        let ok = checked_rotation(&Rotation {
            next_rotation_time: Some("2030-03-17T19:46:40+02:00".into()),
            rotation_period: Some("86400.5s".into()),
        })
        .unwrap();
        assert_eq!(ok.next_rotation_time, Some(rfc3339(T0)));
        assert_eq!(ok.rotation_period.as_deref(), Some("86400s"));
        assert!(expire_time(&Expiry::After(0), T0).is_err());
        assert!(expire_time(&Expiry::At(rfc3339(T0 - 1)), T0).is_err());
        assert_eq!(
            expire_time(&Expiry::After(60), T0).unwrap(),
            rfc3339(T0 + 60)
        );
        assert!(expire_time(&Expiry::At("tomorrow".into()), T0).is_err());
    }

    #[test]
    fn expiry_and_due_rotation_follow_the_clock() {
        let s = SecretSettings {
            expire_time: Some(rfc3339(T0)),
            rotation: Some(Rotation {
                next_rotation_time: Some(rfc3339(T0)),
                rotation_period: None,
            }),
            ..SecretSettings::default()
        };
        assert!(!is_expired(&s, T0 - 1));
        assert!(is_expired(&s, T0));
        assert_eq!(due_rotation(&s, T0 - 1), None);
        assert_eq!(due_rotation(&s, T0), Some(rfc3339(T0)));
    }
}
