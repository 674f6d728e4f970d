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

/// Canonical permission names, as managed registries spell them.
pub mod permissions {
    /// Read repository metadata.
    pub const REPOSITORIES_GET: &str = "artifactregistry.repositories.get";
    /// List repositories.
    pub const REPOSITORIES_LIST: &str = "artifactregistry.repositories.list";
    /// Create repositories.
    pub const REPOSITORIES_CREATE: &str = "artifactregistry.repositories.create";
    /// Change repositories.
    pub const REPOSITORIES_UPDATE: &str = "artifactregistry.repositories.update";
    /// Delete repositories.
    pub const REPOSITORIES_DELETE: &str = "artifactregistry.repositories.delete";
    /// Pull content.
    pub const DOWNLOAD_ARTIFACTS: &str = "artifactregistry.repositories.downloadArtifacts";
    /// Push content.
    pub const UPLOAD_ARTIFACTS: &str = "artifactregistry.repositories.uploadArtifacts";
    /// Delete content.
    pub const DELETE_ARTIFACTS: &str = "artifactregistry.repositories.deleteArtifacts";
    /// Read a repository's IAM policy.
    pub const REPOSITORIES_GET_IAM_POLICY: &str = "artifactregistry.repositories.getIamPolicy";
    /// Replace a repository's IAM policy.
    pub const REPOSITORIES_SET_IAM_POLICY: &str = "artifactregistry.repositories.setIamPolicy";
    /// Read project metadata.
    pub const PROJECTS_GET: &str = "resourcemanager.projects.get";
    /// Create projects.
    pub const PROJECTS_CREATE: &str = "resourcemanager.projects.create";
    /// Read a project's IAM policy.
    pub const PROJECTS_GET_IAM_POLICY: &str = "resourcemanager.projects.getIamPolicy";
    /// Replace a project's IAM policy.
    pub const PROJECTS_SET_IAM_POLICY: &str = "resourcemanager.projects.setIamPolicy";
    /// Read secret metadata.
    pub const SECRETS_GET: &str = "secretmanager.secrets.get";
    /// List secrets.
    pub const SECRETS_LIST: &str = "secretmanager.secrets.list";
    /// Create secrets.
    pub const SECRETS_CREATE: &str = "secretmanager.secrets.create";
    /// Change secrets.
    pub const SECRETS_UPDATE: &str = "secretmanager.secrets.update";
    /// Delete secrets.
    pub const SECRETS_DELETE: &str = "secretmanager.secrets.delete";
    /// Read a secret's IAM policy.
    pub const SECRETS_GET_IAM_POLICY: &str = "secretmanager.secrets.getIamPolicy";
    /// Replace a secret's IAM policy.
    pub const SECRETS_SET_IAM_POLICY: &str = "secretmanager.secrets.setIamPolicy";
    /// Read secret version metadata.
    pub const VERSIONS_GET: &str = "secretmanager.versions.get";
    /// List secret versions.
    pub const VERSIONS_LIST: &str = "secretmanager.versions.list";
    /// Add secret versions.
    pub const VERSIONS_ADD: &str = "secretmanager.versions.add";
    /// Enable, disable or destroy secret versions.
    pub const VERSIONS_MANAGE: &str = "secretmanager.versions.manage";
    /// Read a secret version's payload.
    pub const VERSIONS_ACCESS: &str = "secretmanager.versions.access";
    /// Read the registry access policy.
    pub const ACCESS_POLICY_GET: &str = "entrepot.accessPolicy.get";
    /// Change the registry access policy.
    pub const ACCESS_POLICY_UPDATE: &str = "entrepot.accessPolicy.update";
    /// Manage users, service accounts and their tokens.
    pub const PRINCIPALS_MANAGE: &str = "entrepot.principals.manage";

    /// Every permission entrepot knows.
    pub const ALL: &[&str] = &[
        REPOSITORIES_GET,
        REPOSITORIES_LIST,
        REPOSITORIES_CREATE,
        REPOSITORIES_UPDATE,
        REPOSITORIES_DELETE,
        DOWNLOAD_ARTIFACTS,
        UPLOAD_ARTIFACTS,
        DELETE_ARTIFACTS,
        REPOSITORIES_GET_IAM_POLICY,
        REPOSITORIES_SET_IAM_POLICY,
        PROJECTS_GET,
        PROJECTS_CREATE,
        PROJECTS_GET_IAM_POLICY,
        PROJECTS_SET_IAM_POLICY,
        SECRETS_GET,
        SECRETS_LIST,
        SECRETS_CREATE,
        SECRETS_UPDATE,
        SECRETS_DELETE,
        SECRETS_GET_IAM_POLICY,
        SECRETS_SET_IAM_POLICY,
        VERSIONS_GET,
        VERSIONS_LIST,
        VERSIONS_ADD,
        VERSIONS_MANAGE,
        VERSIONS_ACCESS,
        ACCESS_POLICY_GET,
        ACCESS_POLICY_UPDATE,
        PRINCIPALS_MANAGE,
    ];

    /// Permissions that only read: the only ones a read-only token may use.
    pub const READ_ONLY: &[&str] = &[
        REPOSITORIES_GET,
        REPOSITORIES_LIST,
        DOWNLOAD_ARTIFACTS,
        REPOSITORIES_GET_IAM_POLICY,
        PROJECTS_GET,
        PROJECTS_GET_IAM_POLICY,
        SECRETS_GET,
        SECRETS_LIST,
        SECRETS_GET_IAM_POLICY,
        VERSIONS_GET,
        VERSIONS_LIST,
        VERSIONS_ACCESS,
        ACCESS_POLICY_GET,
    ];

    /// Whether `name` is a known permission.
    pub fn is_known(name: &str) -> bool {
        ALL.contains(&name)
    }

    /// Whether `name` only reads.
    pub fn is_read_only(name: &str) -> bool {
        READ_ONLY.contains(&name)
    }
}

use permissions as p;

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
    pub permissions: &'static [&'static str],
    /// Grants every permission (`roles/owner`).
    pub all: bool,
}

impl Role {
    /// Whether the role grants `permission`.
    pub fn grants(&self, permission: &str) -> bool {
        self.all || self.permissions.contains(&permission)
    }
}

const AR_READER: &[&str] = &[
    p::REPOSITORIES_GET,
    p::REPOSITORIES_LIST,
    p::DOWNLOAD_ARTIFACTS,
];
const AR_WRITER: &[&str] = &[
    p::REPOSITORIES_GET,
    p::REPOSITORIES_LIST,
    p::DOWNLOAD_ARTIFACTS,
    p::UPLOAD_ARTIFACTS,
];
const AR_REPO_ADMIN: &[&str] = &[
    p::REPOSITORIES_GET,
    p::REPOSITORIES_LIST,
    p::DOWNLOAD_ARTIFACTS,
    p::UPLOAD_ARTIFACTS,
    p::DELETE_ARTIFACTS,
];
const AR_ADMIN: &[&str] = &[
    p::REPOSITORIES_GET,
    p::REPOSITORIES_LIST,
    p::DOWNLOAD_ARTIFACTS,
    p::UPLOAD_ARTIFACTS,
    p::DELETE_ARTIFACTS,
    p::REPOSITORIES_CREATE,
    p::REPOSITORIES_UPDATE,
    p::REPOSITORIES_DELETE,
    p::REPOSITORIES_GET_IAM_POLICY,
    p::REPOSITORIES_SET_IAM_POLICY,
];
const SM_ACCESSOR: &[&str] = &[p::VERSIONS_ACCESS];
const SM_VIEWER: &[&str] = &[
    p::SECRETS_GET,
    p::SECRETS_LIST,
    p::VERSIONS_GET,
    p::VERSIONS_LIST,
    p::SECRETS_GET_IAM_POLICY,
];
const SM_ADMIN: &[&str] = &[
    p::SECRETS_GET,
    p::SECRETS_LIST,
    p::SECRETS_CREATE,
    p::SECRETS_UPDATE,
    p::SECRETS_DELETE,
    p::SECRETS_GET_IAM_POLICY,
    p::SECRETS_SET_IAM_POLICY,
    p::VERSIONS_GET,
    p::VERSIONS_LIST,
    p::VERSIONS_ADD,
    p::VERSIONS_MANAGE,
    p::VERSIONS_ACCESS,
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
        assert!(policy.allows(std::slice::from_ref(&bob), p::DOWNLOAD_ARTIFACTS));
        assert!(!policy.allows(std::slice::from_ref(&bob), p::UPLOAD_ARTIFACTS));
        assert!(policy.remove_binding(ARTIFACTREGISTRY_READER, &bob));
        assert!(!policy.remove_binding(ARTIFACTREGISTRY_READER, &bob));
        assert!(policy.remove_binding(ARTIFACTREGISTRY_READER, &Member::AllUsers));
        assert!(policy.bindings.is_empty());
    }

    #[test]
    fn roles_grant_what_they_document() {
        let grants = |r: &str, perm: &str| role(r).unwrap().grants(perm);
        assert!(grants(OWNER, p::PRINCIPALS_MANAGE));
        assert!(grants(ARTIFACTREGISTRY_READER, p::DOWNLOAD_ARTIFACTS));
        assert!(!grants(ARTIFACTREGISTRY_READER, p::UPLOAD_ARTIFACTS));
        assert!(grants(ARTIFACTREGISTRY_WRITER, p::UPLOAD_ARTIFACTS));
        assert!(!grants(ARTIFACTREGISTRY_WRITER, p::DELETE_ARTIFACTS));
        assert!(grants(ARTIFACTREGISTRY_REPO_ADMIN, p::DELETE_ARTIFACTS));
        assert!(!grants(ARTIFACTREGISTRY_REPO_ADMIN, p::REPOSITORIES_CREATE));
        assert!(grants(
            ARTIFACTREGISTRY_ADMIN,
            p::REPOSITORIES_SET_IAM_POLICY
        ));
        assert!(!grants(ARTIFACTREGISTRY_ADMIN, p::VERSIONS_ACCESS));
        assert!(grants(SECRETMANAGER_SECRET_ACCESSOR, p::VERSIONS_ACCESS));
        assert!(!grants(SECRETMANAGER_VIEWER, p::VERSIONS_ACCESS));
        assert!(grants(SECRETMANAGER_VIEWER, p::SECRETS_GET_IAM_POLICY));
        for perm in p::ALL.iter().filter(|n| n.starts_with("secretmanager.")) {
            assert!(grants(SECRETMANAGER_ADMIN, perm), "{perm}");
        }
        for r in ROLES {
            assert!(
                r.permissions.iter().all(|perm| p::is_known(perm)),
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
