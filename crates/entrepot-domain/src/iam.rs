//! IAM: members, roles, policies and their evaluation.
//!
//! A [`Policy`] binds [`Role`]s to [`Member`]s on one resource; a role is a set of
//! permission names. Everything here is pure: the service layer loads the
//! policies that apply to a resource (organisation, project, then the resource
//! itself) and asks each whether it grants a permission to the caller.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Defines [`Permission`] once: the variant, its canonical name, and
/// [`Permission::ALL`], so the catalogue cannot drift from the names.
macro_rules! permission_catalogue {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// A permission, named as users of managed registries know them.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
        pub enum Permission {
            $($(#[$doc])* $variant,)*
        }

        impl Permission {
            /// Every permission entrepot knows.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The permission's canonical name.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }
        }
    };
}

permission_catalogue! {
    /// Read repository metadata.
    RepositoriesGet => "artifactregistry.repositories.get",
    /// List repositories.
    RepositoriesList => "artifactregistry.repositories.list",
    /// Create repositories.
    RepositoriesCreate => "artifactregistry.repositories.create",
    /// Change repositories.
    RepositoriesUpdate => "artifactregistry.repositories.update",
    /// Delete repositories.
    RepositoriesDelete => "artifactregistry.repositories.delete",
    /// Pull content.
    DownloadArtifacts => "artifactregistry.repositories.downloadArtifacts",
    /// Push content.
    UploadArtifacts => "artifactregistry.repositories.uploadArtifacts",
    /// Delete content (manifests, tags, blobs).
    DeleteArtifacts => "artifactregistry.repositories.deleteArtifacts",
    /// Read the IAM policy of a repository.
    RepositoriesGetIamPolicy => "artifactregistry.repositories.getIamPolicy",
    /// Replace the IAM policy of a repository.
    RepositoriesSetIamPolicy => "artifactregistry.repositories.setIamPolicy",
    /// Read project metadata.
    ProjectsGet => "resourcemanager.projects.get",
    /// Create projects.
    ProjectsCreate => "resourcemanager.projects.create",
    /// Read a project's IAM policy.
    ProjectsGetIamPolicy => "resourcemanager.projects.getIamPolicy",
    /// Replace a project's IAM policy.
    ProjectsSetIamPolicy => "resourcemanager.projects.setIamPolicy",
    /// Read secret metadata.
    SecretsGet => "secretmanager.secrets.get",
    /// List secrets.
    SecretsList => "secretmanager.secrets.list",
    /// Create secrets.
    SecretsCreate => "secretmanager.secrets.create",
    /// Change secrets (labels).
    SecretsUpdate => "secretmanager.secrets.update",
    /// Delete secrets.
    SecretsDelete => "secretmanager.secrets.delete",
    /// Read a secret's IAM policy.
    SecretsGetIamPolicy => "secretmanager.secrets.getIamPolicy",
    /// Replace a secret's IAM policy.
    SecretsSetIamPolicy => "secretmanager.secrets.setIamPolicy",
    /// Read secret version metadata.
    VersionsGet => "secretmanager.versions.get",
    /// List secret versions.
    VersionsList => "secretmanager.versions.list",
    /// Add secret versions.
    VersionsAdd => "secretmanager.versions.add",
    /// Enable, disable or destroy secret versions.
    VersionsManage => "secretmanager.versions.manage",
    /// Read a secret version's payload.
    VersionsAccess => "secretmanager.versions.access",
    /// Read the organisation's registry access policy.
    AccessPolicyGet => "entrepot.accessPolicy.get",
    /// Change the organisation's registry access policy.
    AccessPolicyUpdate => "entrepot.accessPolicy.update",
    /// Manage users, service accounts and their tokens.
    PrincipalsManage => "entrepot.principals.manage",
    /// Run the garbage collector over the shared blob store.
    StorageCollectGarbage => "entrepot.storage.collectGarbage",
}

impl Permission {
    /// Whether the permission only reads: the only ones a read-only token may use.
    pub const fn is_read_only(self) -> bool {
        matches!(
            self,
            Permission::RepositoriesGet
                | Permission::RepositoriesList
                | Permission::DownloadArtifacts
                | Permission::RepositoriesGetIamPolicy
                | Permission::ProjectsGet
                | Permission::ProjectsGetIamPolicy
                | Permission::SecretsGet
                | Permission::SecretsList
                | Permission::SecretsGetIamPolicy
                | Permission::VersionsGet
                | Permission::VersionsList
                | Permission::VersionsAccess
                | Permission::AccessPolicyGet
        )
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name entrepot does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission {0:?} does not exist")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// Checks on permission names as callers send them.
pub mod permissions {
    use super::Permission;

    /// Whether `name` is a known permission.
    pub fn is_known(name: &str) -> bool {
        name.parse::<Permission>().is_ok()
    }

    /// Whether `name` is a known permission that only reads.
    pub fn is_read_only(name: &str) -> bool {
        name.parse::<Permission>()
            .is_ok_and(Permission::is_read_only)
    }
}

/// Why an IAM value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// A member string that is none of the four kinds.
    #[error("member {0:?} is invalid: use user:EMAIL, serviceAccount:EMAIL, allUsers or allAuthenticatedUsers")]
    BadMember(String),
    /// A role that entrepot does not define.
    #[error("role {role:?} does not exist; known roles: {known}")]
    UnknownRole {
        /// The refused role.
        role: String,
        /// The predefined roles, comma separated.
        known: String,
    },
    /// A binding without members.
    #[error("the binding for {0} has no members")]
    EmptyBinding(String),
    /// A policy version entrepot does not understand.
    #[error("policy version {0} is not supported; use 1")]
    BadVersion(i32),
}

/// Who a binding grants a role to.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Member {
    /// `user:EMAIL` (or `user:NAME` for local users such as the bootstrap `admin`).
    User(String),
    /// `serviceAccount:EMAIL`.
    ServiceAccount(String),
    /// `allUsers`: everyone, including anonymous callers.
    AllUsers,
    /// `allAuthenticatedUsers`: every caller that presented valid credentials.
    AllAuthenticatedUsers,
}

/// Whether `s` is acceptable as a user name or e-mail address: printable ASCII
/// without spaces, at most one `@` with text on both sides.
pub fn valid_email(s: &str, require_at: bool) -> bool {
    if s.is_empty() || s.len() > 254 {
        return false;
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"._%+-@".contains(&c))
    {
        return false;
    }
    match s.split_once('@') {
        Some((local, domain)) => !local.is_empty() && !domain.is_empty() && !domain.contains('@'),
        None => !require_at,
    }
}

impl FromStr for Member {
    type Err = IamError;

    fn from_str(s: &str) -> Result<Self, IamError> {
        let bad = || IamError::BadMember(s.to_owned());
        match s {
            "allUsers" => return Ok(Member::AllUsers),
            "allAuthenticatedUsers" => return Ok(Member::AllAuthenticatedUsers),
            _ => {}
        }
        let (kind, email) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "user" if valid_email(email, false) => Ok(Member::User(email.to_owned())),
            "serviceAccount" if valid_email(email, true) => {
                Ok(Member::ServiceAccount(email.to_owned()))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Member::User(e) => write!(f, "user:{e}"),
            Member::ServiceAccount(e) => write!(f, "serviceAccount:{e}"),
            Member::AllUsers => f.write_str("allUsers"),
            Member::AllAuthenticatedUsers => f.write_str("allAuthenticatedUsers"),
        }
    }
}

impl Serialize for Member {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A predefined role: a name and the permissions it grants.
#[derive(Debug, PartialEq, Eq)]
pub struct Role {
    /// `roles/...`.
    pub name: &'static str,
    /// One line for humans.
    pub title: &'static str,
    /// Granted permissions (ignored when `all` is set).
    pub permissions: &'static [Permission],
    /// Grants every permission (`roles/owner`).
    pub all: bool,
}

impl Role {
    /// Whether the role grants `permission`.
    pub fn grants(&self, permission: &str) -> bool {
        permission
            .parse::<Permission>()
            .is_ok_and(|p| self.grants_permission(p))
    }

    /// Whether the role grants `permission`, already parsed.
    pub fn grants_permission(&self, permission: Permission) -> bool {
        self.all || self.permissions.contains(&permission)
    }
}

const AR_READER: &[Permission] = &[
    Permission::RepositoriesGet,
    Permission::RepositoriesList,
    Permission::DownloadArtifacts,
];
const AR_WRITER: &[Permission] = &[
    Permission::RepositoriesGet,
    Permission::RepositoriesList,
    Permission::DownloadArtifacts,
    Permission::UploadArtifacts,
];
const AR_REPO_ADMIN: &[Permission] = &[
    Permission::RepositoriesGet,
    Permission::RepositoriesList,
    Permission::DownloadArtifacts,
    Permission::UploadArtifacts,
    Permission::DeleteArtifacts,
];
const AR_ADMIN: &[Permission] = &[
    Permission::RepositoriesGet,
    Permission::RepositoriesList,
    Permission::DownloadArtifacts,
    Permission::UploadArtifacts,
    Permission::DeleteArtifacts,
    Permission::RepositoriesCreate,
    Permission::RepositoriesUpdate,
    Permission::RepositoriesDelete,
    Permission::RepositoriesGetIamPolicy,
    Permission::RepositoriesSetIamPolicy,
];
const SM_ACCESSOR: &[Permission] = &[Permission::VersionsAccess];
const SM_VIEWER: &[Permission] = &[
    Permission::SecretsGet,
    Permission::SecretsList,
    Permission::VersionsGet,
    Permission::VersionsList,
    Permission::SecretsGetIamPolicy,
];
const SM_ADMIN: &[Permission] = &[
    Permission::SecretsGet,
    Permission::SecretsList,
    Permission::SecretsCreate,
    Permission::SecretsUpdate,
    Permission::SecretsDelete,
    Permission::SecretsGetIamPolicy,
    Permission::SecretsSetIamPolicy,
    Permission::VersionsGet,
    Permission::VersionsList,
    Permission::VersionsAdd,
    Permission::VersionsManage,
    Permission::VersionsAccess,
];

/// `roles/owner`.
pub const OWNER: &str = "roles/owner";
/// `roles/artifactregistry.reader`.
pub const ARTIFACTREGISTRY_READER: &str = "roles/artifactregistry.reader";
/// `roles/artifactregistry.writer`.
pub const ARTIFACTREGISTRY_WRITER: &str = "roles/artifactregistry.writer";
/// `roles/artifactregistry.repoAdmin`.
pub const ARTIFACTREGISTRY_REPO_ADMIN: &str = "roles/artifactregistry.repoAdmin";
/// `roles/artifactregistry.admin`.
pub const ARTIFACTREGISTRY_ADMIN: &str = "roles/artifactregistry.admin";
/// `roles/secretmanager.secretAccessor`.
pub const SECRETMANAGER_SECRET_ACCESSOR: &str = "roles/secretmanager.secretAccessor";
/// `roles/secretmanager.viewer`.
pub const SECRETMANAGER_VIEWER: &str = "roles/secretmanager.viewer";
/// `roles/secretmanager.admin`.
pub const SECRETMANAGER_ADMIN: &str = "roles/secretmanager.admin";

/// Every predefined role.
pub const ROLES: &[Role] = &[
    Role {
        name: OWNER,
        title: "Full control of everything",
        permissions: &[],
        all: true,
    },
    Role {
        name: ARTIFACTREGISTRY_READER,
        title: "Read repositories and pull artifacts",
        permissions: AR_READER,
        all: false,
    },
    Role {
        name: ARTIFACTREGISTRY_WRITER,
        title: "Read repositories, pull and push artifacts",
        permissions: AR_WRITER,
        all: false,
    },
    Role {
        name: ARTIFACTREGISTRY_REPO_ADMIN,
        title: "Pull, push and delete artifacts",
        permissions: AR_REPO_ADMIN,
        all: false,
    },
    Role {
        name: ARTIFACTREGISTRY_ADMIN,
        title: "Manage repositories, their artifacts and IAM policies",
        permissions: AR_ADMIN,
        all: false,
    },
    Role {
        name: SECRETMANAGER_SECRET_ACCESSOR,
        title: "Read secret payloads",
        permissions: SM_ACCESSOR,
        all: false,
    },
    Role {
        name: SECRETMANAGER_VIEWER,
        title: "Read secret metadata, not payloads",
        permissions: SM_VIEWER,
        all: false,
    },
    Role {
        name: SECRETMANAGER_ADMIN,
        title: "Manage secrets, their versions and IAM policies",
        permissions: SM_ADMIN,
        all: false,
    },
];

/// The predefined role called `name`, or a clear error naming the known roles.
pub fn role(name: &str) -> Result<&'static Role, IamError> {
    ROLES
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| IamError::UnknownRole {
            role: name.to_owned(),
            known: ROLES.iter().map(|r| r.name).collect::<Vec<_>>().join(", "),
        })
}

/// One role granted to some members.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binding {
    /// `roles/...`.
    pub role: String,
    /// Who holds the role.
    pub members: Vec<Member>,
}

/// The etag of a resource that never had a policy.
pub const EMPTY_POLICY_ETAG: &str = "ACAB";

/// The etag of a newly written policy, made from 8 random bytes: standard,
/// padded base64 (`BwXhqDn3sNs=`), as Google's IAM writes them. Google's
/// client libraries decode an etag and encode it again before sending it
/// back, so any other form would come back changed and be refused as stale.
pub fn policy_etag(random: [u8; 8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// The IAM policy of one resource, in the JSON shape of Google IAM.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Policy {
    /// Policy language version; always 1.
    #[serde(default = "one")]
    pub version: i32,
    /// Changes with every write; a set must present the current one.
    #[serde(default)]
    pub etag: String,
    /// Role bindings.
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

fn one() -> i32 {
    1
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            version: 1,
            etag: EMPTY_POLICY_ETAG.to_owned(),
            bindings: Vec::new(),
        }
    }
}

impl Policy {
    /// Check every role exists and every binding has members; fails on the first
    /// problem.
    pub fn validate(&self) -> Result<(), IamError> {
        if self.version != 1 {
            return Err(IamError::BadVersion(self.version));
        }
        for b in &self.bindings {
            role(&b.role)?;
            if b.members.is_empty() {
                return Err(IamError::EmptyBinding(b.role.clone()));
            }
        }
        Ok(())
    }

    /// The same bindings merged by role, members sorted and de-duplicated,
    /// roles sorted: the form stored and returned.
    pub fn normalized(mut self) -> Self {
        let mut roles: Vec<(String, BTreeSet<Member>)> = Vec::new();
        for b in self.bindings.drain(..) {
            match roles.iter_mut().find(|(r, _)| *r == b.role) {
                Some((_, set)) => set.extend(b.members),
                None => roles.push((b.role, b.members.into_iter().collect())),
            }
        }
        roles.sort_by(|a, b| a.0.cmp(&b.0));
        self.bindings = roles
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(role, members)| Binding {
                role,
                members: members.into_iter().collect(),
            })
            .collect();
        self
    }

    /// Grant `role` to `member`. Fails on an unknown role; false if the member
    /// already had it.
    pub fn add_binding(&mut self, role_name: &str, member: Member) -> Result<bool, IamError> {
        role(role_name)?;
        match self.bindings.iter_mut().find(|b| b.role == role_name) {
            Some(b) if b.members.contains(&member) => Ok(false),
            Some(b) => {
                b.members.push(member);
                b.members.sort();
                Ok(true)
            }
            None => {
                self.bindings.push(Binding {
                    role: role_name.to_owned(),
                    members: vec![member],
                });
                self.bindings.sort_by(|a, b| a.role.cmp(&b.role));
                Ok(true)
            }
        }
    }

    /// Take `role` away from `member`; false if the member did not have it.
    /// Bindings left without members disappear.
    pub fn remove_binding(&mut self, role_name: &str, member: &Member) -> bool {
        let mut removed = false;
        for b in self.bindings.iter_mut().filter(|b| b.role == role_name) {
            let before = b.members.len();
            b.members.retain(|m| m != member);
            removed |= b.members.len() != before;
        }
        self.bindings.retain(|b| !b.members.is_empty());
        removed
    }

    /// Take every role away from `member` (a deleted principal); false if it
    /// had none. Bindings left without members disappear.
    pub fn remove_member(&mut self, member: &Member) -> bool {
        let mut removed = false;
        for b in &mut self.bindings {
            let before = b.members.len();
            b.members.retain(|m| m != member);
            removed |= b.members.len() != before;
        }
        self.bindings.retain(|b| !b.members.is_empty());
        removed
    }

    /// Whether any of `identities` holds a role granting `permission`.
    /// Unknown roles (which validation refuses) grant nothing.
    pub fn allows(&self, identities: &[Member], permission: &str) -> bool {
        self.bindings.iter().any(|b| {
            role(&b.role).is_ok_and(|r| r.grants(permission))
                && b.members.iter().any(|m| identities.contains(m))
        })
    }
}

/// The e-mail of a project's service agent, the identity entrepot acts as when
/// it works for that project (reading secrets for remote repositories).
pub fn service_agent_email(project_number: i64) -> String {
    format!("service-{project_number}@entrepot-agent.iam.entrepot")
}

/// The e-mail of a service account `account_id` in `project`.
pub fn service_account_email(project: &str, account_id: &str) -> String {
    format!("{account_id}@{project}.iam.entrepot")
}

/// Whether `email` names a project's service agent (which has no credentials).
pub fn is_service_agent(email: &str) -> bool {
    email.ends_with("@entrepot-agent.iam.entrepot")
}

#[cfg(test)]
mod tests {
    use super::*;
    use permissions as p;

    #[test]
    fn policy_etags_survive_a_base64_round_trip() {
        use base64::Engine as _;
        let engine = base64::engine::general_purpose::STANDARD;
        for etag in [
            policy_etag([0; 8]),
            policy_etag([0xff; 8]),
            policy_etag(*b"\x07\x05\xe1\xa89\xf7\xb0\xdb"),
        ] {
            let decoded = engine.decode(&etag).unwrap();
            assert_eq!(engine.encode(decoded), etag);
        }
        let empty = engine.decode(EMPTY_POLICY_ETAG).unwrap();
        assert_eq!(engine.encode(empty), EMPTY_POLICY_ETAG);
    }

    fn m(s: &str) -> Member {
        s.parse().unwrap()
    }

    #[test]
    fn members_parse_and_print_back() {
        for s in [
            "user:alice@example.com",
            "user:admin",
            "serviceAccount:ci@default.iam.entrepot",
            "allUsers",
            "allAuthenticatedUsers",
        ] {
            assert_eq!(m(s).to_string(), s);
        }
        for bad in [
            "alice@example.com",
            "user:",
            "user:a b",
            "group:devs@example.com",
            "serviceAccount:ci",
            "user:a@b@c",
            "allusers",
        ] {
            assert!(
                matches!(bad.parse::<Member>(), Err(IamError::BadMember(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn policy_json_has_the_google_shape() {
        let json = r#"{"version":1,"etag":"BwX","bindings":[{"role":"roles/artifactregistry.reader","members":["allUsers","user:bob@example.com"]}]}"#;
        let policy: Policy = serde_json::from_str(json).unwrap();
        assert_eq!(policy.bindings[0].members[0], Member::AllUsers);
        assert_eq!(serde_json::to_string(&policy).unwrap(), json);
        let empty: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(empty.version, 1);
        assert!(serde_json::from_str::<Policy>(
            r#"{"bindings":[{"role":"roles/owner","members":["bob"]}]}"#
        )
        .is_err());
    }

    #[test]
    fn unknown_roles_are_refused_with_the_known_ones_listed() {
        let mut policy = Policy::default();
        let err = policy
            .add_binding("roles/artifactregistry.superuser", Member::AllUsers)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("roles/artifactregistry.superuser")
                && text.contains("roles/artifactregistry.writer")
        );
        policy.bindings.push(Binding {
            role: "roles/editor".into(),
            members: vec![Member::AllUsers],
        });
        assert!(matches!(
            policy.validate(),
            Err(IamError::UnknownRole { .. })
        ));
    }

    #[test]
    fn bindings_are_added_and_removed() {
        let mut policy = Policy::default();
        let bob = m("user:bob@example.com");
        assert!(policy
            .add_binding(ARTIFACTREGISTRY_READER, bob.clone())
            .unwrap());
        assert!(!policy
            .add_binding(ARTIFACTREGISTRY_READER, bob.clone())
            .unwrap());
        assert!(policy
            .add_binding(ARTIFACTREGISTRY_READER, Member::AllUsers)
            .unwrap());
        assert!(policy.allows(
            std::slice::from_ref(&bob),
            Permission::DownloadArtifacts.as_str()
        ));
        assert!(!policy.allows(
            std::slice::from_ref(&bob),
            Permission::UploadArtifacts.as_str()
        ));
        assert!(policy.remove_binding(ARTIFACTREGISTRY_READER, &bob));
        assert!(!policy.remove_binding(ARTIFACTREGISTRY_READER, &bob));
        assert!(policy.remove_binding(ARTIFACTREGISTRY_READER, &Member::AllUsers));
        assert!(policy.bindings.is_empty());
    }

    #[test]
    fn roles_grant_what_they_document() {
        let grants = |r: &str, perm: &str| role(r).unwrap().grants(perm);
        assert!(grants(OWNER, Permission::PrincipalsManage.as_str()));
        assert!(grants(
            ARTIFACTREGISTRY_READER,
            Permission::DownloadArtifacts.as_str()
        ));
        assert!(!grants(
            ARTIFACTREGISTRY_READER,
            Permission::UploadArtifacts.as_str()
        ));
        assert!(grants(
            ARTIFACTREGISTRY_WRITER,
            Permission::UploadArtifacts.as_str()
        ));
        assert!(!grants(
            ARTIFACTREGISTRY_WRITER,
            Permission::DeleteArtifacts.as_str()
        ));
        assert!(grants(
            ARTIFACTREGISTRY_REPO_ADMIN,
            Permission::DeleteArtifacts.as_str()
        ));
        assert!(!grants(
            ARTIFACTREGISTRY_REPO_ADMIN,
            Permission::RepositoriesCreate.as_str()
        ));
        assert!(grants(
            ARTIFACTREGISTRY_ADMIN,
            Permission::RepositoriesSetIamPolicy.as_str()
        ));
        assert!(!grants(
            ARTIFACTREGISTRY_ADMIN,
            Permission::VersionsAccess.as_str()
        ));
        assert!(grants(
            SECRETMANAGER_SECRET_ACCESSOR,
            Permission::VersionsAccess.as_str()
        ));
        assert!(!grants(
            SECRETMANAGER_VIEWER,
            Permission::VersionsAccess.as_str()
        ));
        assert!(grants(
            SECRETMANAGER_VIEWER,
            Permission::SecretsGetIamPolicy.as_str()
        ));
        for perm in Permission::ALL
            .iter()
            .map(|p| p.as_str())
            .filter(|n| n.starts_with("secretmanager."))
        {
            assert!(grants(SECRETMANAGER_ADMIN, perm), "{perm}");
        }
        for r in ROLES {
            assert!(
                r.permissions.iter().all(|perm| p::is_known(perm.as_str())),
                "{}",
                r.name
            );
        }
    }

    #[test]
    fn normalizing_merges_roles_and_drops_duplicates() {
        let policy = Policy {
            version: 1,
            etag: String::new(),
            bindings: vec![
                Binding {
                    role: OWNER.into(),
                    members: vec![m("user:b"), m("user:a")],
                },
                Binding {
                    role: OWNER.into(),
                    members: vec![m("user:a")],
                },
            ],
        }
        .normalized();
        assert_eq!(policy.bindings.len(), 1);
        assert_eq!(policy.bindings[0].members, vec![m("user:a"), m("user:b")]);
    }

    #[test]
    fn service_agents_have_a_recognisable_identity() {
        let email = service_agent_email(1001);
        assert_eq!(email, "service-1001@entrepot-agent.iam.entrepot");
        assert!(is_service_agent(&email));
        assert!(!is_service_agent(&service_account_email("default", "ci")));
    }
}
