//! The contracts every storage backend keeps, written once.
//!
//! Each function exercises one contract the services rely on through the
//! store traits only, and panics when the backend breaks it.
//! [`metadata_suite!`] turns every metadata contract into a `#[tokio::test]`
//! against one backend, so a backend runs the whole suite with one line per
//! way of opening it (see the end of `sqlite/mod.rs`); each test gets a new,
//! empty database. [`blob_suite!`] does the same for blob stores (see
//! `blob/object.rs`).

#![allow(clippy::unwrap_used)] // A broken contract is a failed test.

pub(crate) mod access_policy;
pub(crate) mod backend;
pub(crate) mod blob;
pub(crate) mod iam;
pub(crate) mod leases;
pub(crate) mod metadata;
pub(crate) mod python;
pub(crate) mod quota;
pub(crate) mod records;
pub(crate) mod secrets;
pub(crate) mod workflows;

/// A resource name, parsed.
pub(crate) fn res(name: &str) -> entrepot_domain::resource::Resource {
    name.parse().unwrap()
}

/// A project id the suite names.
pub(crate) fn pid(id: &str) -> entrepot_domain::ProjectId {
    id.parse().unwrap()
}

/// A repository id the suite names.
pub(crate) fn rid(id: &str) -> entrepot_domain::RepositoryId {
    id.parse().unwrap()
}

/// The repository `projects/{project}/repositories/{id}`.
pub(crate) fn rname(project: &str, id: &str) -> entrepot_domain::RepositoryName {
    entrepot_domain::RepositoryName::new(pid(project), rid(id))
}

/// The secret `projects/{project}/secrets/{id}`.
pub(crate) fn sname(project: &str, id: &str) -> entrepot_domain::SecretName {
    entrepot_domain::SecretName {
        project: pid(project),
        secret: id.parse().unwrap(),
    }
}

/// Walk a keyset listing in pages of `size`: `page(after, n)` reads page `n`
/// (from 0) after the key `after` and returns the keys on it. Returns every
/// key in the order seen; checks that no page is larger than `size`.
pub(crate) async fn walk<K: Clone>(
    size: u32,
    mut page: impl AsyncFnMut(Option<K>, usize) -> Vec<K>,
) -> Vec<K> {
    let mut seen = Vec::new();
    let mut after = None;
    for n in 0..10_000 {
        let keys = page(after.clone(), n).await;
        assert!(
            keys.len() <= size as usize,
            "page {n} holds {} items, more than the {size} asked for",
            keys.len()
        );
        let full = keys.len() == size as usize;
        after = keys.last().cloned();
        seen.extend(keys);
        if !full {
            return seen;
        }
    }
    panic!("the listing never ended: the cursor is not followed");
}

/// Run every metadata contract against one backend: one `#[tokio::test]`
/// per contract, each opening a new backend with `$open`, an expression
/// whose value is a future of `(Stores, guard)`; the guard (a temporary
/// directory, or `()`) lives until the test ends. Use it inside a module of
/// its own.
macro_rules! metadata_suite {
    ($open:expr) => {
        $crate::conformance::contracts!($open;
            metadata::projects_are_create_only,
            metadata::project_pages_follow_id_order_while_projects_are_added,
            metadata::repositories_are_create_only_within_a_project,
            metadata::repository_pages_stay_stable_while_repositories_come_and_go,
            metadata::deleting_a_repository_takes_its_content,
            metadata::blob_links_belong_to_one_image,
            metadata::repository_size_counts_its_own_content_once,
            metadata::existence_checks_answer_for_many_digests,
            metadata::manifests_keep_their_bytes_and_are_idempotent_by_digest,
            metadata::tags_are_put_moved_and_deleted,
            metadata::reads_follow_every_write,
            metadata::tag_pages_follow_lexical_order,
            metadata::referrers_are_the_manifests_naming_a_subject,
            metadata::catalog_pages_list_images_with_manifests,
            metadata::upload_sessions_record_parts_by_compare_and_swap,
            metadata::racing_parts_let_one_writer_win,
            metadata::stale_uploads_are_those_untouched_since,
            iam::users_accounts_and_tokens_round_trip,
            iam::user_and_service_account_pages_follow_their_keys,
            iam::deleting_a_principal_revokes_its_tokens_and_grants,
            iam::token_revocation_is_final,
            iam::token_pages_walk_newest_first_through_equal_creation_times,
            iam::set_policy_is_a_compare_and_swap_on_the_etag,
            iam::racing_policy_writers_let_one_win,
            secrets::secrets_are_create_only_and_relabelled,
            secrets::secret_updates_need_the_current_etag,
            secrets::versions_number_from_one_and_latest_skips_disabled,
            secrets::racing_version_inserts_take_one_number_each,
            secrets::version_pages_walk_newest_first,
            secrets::destroy_wipes_the_sealed_payload_for_good,
            secrets::deleting_a_secret_takes_its_versions_and_policy,
            secrets::wrapped_keys_are_replaced_only_if_unchanged,
            secrets::audit_log_filters_by_resource_prefix,
            secrets::audit_filters_take_names_literally,
            secrets::audit_pages_of_one_secret_walk_newest_first_and_include_names_under_it,
            secrets::audit_log_is_bounded_by_pruning_the_oldest,
            python::index_pages_are_replaced_whole,
            python::uploaded_files_are_unique_by_name_and_yank_by_version,
            python::extracted_metadata_survives_page_refreshes,
            python::remembered_file_origins_are_never_served_stale,
            python::large_pages_of_file_origins_are_remembered_whole,
            python::remote_blobs_are_linked_to_their_repository,
            access_policy::access_policy_is_a_compare_and_swap_on_the_etag,
            access_policy::racing_first_policies_let_one_win,
            access_policy::tag_checks_are_kept_per_tag,
            access_policy::referrers_indexes_are_kept_per_subject,
            workflows::deleting_a_repository_takes_its_policy_or_nothing,
            workflows::creating_a_project_with_its_policy_is_all_or_nothing,
        );
    };
}
pub(crate) use metadata_suite;

/// Run every contract of the stores beside [`crate::Stores`] (collection,
/// eviction, cleanup, sessions, inventory) against one backend, as
/// [`metadata_suite!`] does: `$open` gives a future of
/// `(Arc<dyn MetadataBackend>, guard)` (or an option of one).
macro_rules! backend_suite {
    ($open:expr) => {
        $crate::conformance::contracts!($open;
            backend::collection_dooms_only_what_nothing_links,
            backend::orphans_are_claimed_once_and_python_files_are_kept,
            backend::eviction_takes_the_least_recently_pulled_first,
            backend::cleanup_policies_and_quotas_belong_to_their_repository,
            backend::console_sessions_live_until_they_expire,
            backend::inventory_pages_follow_their_keys,
            backend::tag_digests_keep_their_first_sighting,
            backend::a_link_racing_the_collector_never_links_a_doomed_blob,
            records::pull_records_show_in_the_inventory_and_go_with_their_manifest,
            records::cached_python_files_are_evicted_least_recently_downloaded_first,
            records::hosted_python_downloads_show_in_the_inventory_and_go_with_their_file,
            records::referrers_and_first_sightings_go_with_their_repository,
            records::virtual_repositories_are_listed_across_projects,
        );
    };
}
pub(crate) use backend_suite;

/// Run the quota reservation contracts against one backend, as
/// [`backend_suite!`] does; apart from it so that SQLite runs them on a file
/// with several connections too, where the racing one races for real.
macro_rules! quota_suite {
    ($open:expr) => {
        $crate::conformance::contracts!($open;
            quota::reservations_count_against_quotas_until_released_or_expired,
            quota::project_quotas_count_every_repository_s_reservations,
            quota::racing_reservations_never_exceed_the_quota,
        );
    };
}
pub(crate) use quota_suite;

/// Run every blob store contract against one store, as [`metadata_suite!`]
/// does: `$open` gives a future of `(Blobs, guard)`.
macro_rules! blob_suite {
    ($open:expr) => {
        $crate::conformance::contracts!($open;
            blob::absent_blobs_are_not_found,
            blob::put_blob_is_verified_and_idempotent,
            blob::digest_mismatch_leaves_nothing_visible,
            blob::oversized_and_broken_bodies_store_nothing,
            blob::the_empty_blob_is_stored_and_read,
            blob::reads_whole_blobs_and_ranges_across_chunks,
            blob::multi_part_upload_commits_verified_bytes,
            blob::a_mismatched_commit_publishes_nothing,
            blob::racing_parts_never_publish_bytes_that_were_not_hashed,
            blob::racing_commits_of_one_session_publish_it_once,
            blob::single_part_with_running_hash_is_published_in_place,
            blob::parts_and_sessions_are_discarded_alone,
            blob::a_commit_without_its_parts_is_not_found,
            blob::deleted_blobs_are_gone_until_stored_again,
            blob::verified_files_are_imported,
            blob::verify_quarantines_blobs_whose_bytes_do_not_match,
            blob::remove_staging_clears_what_a_crash_left,
        );
    };
}
pub(crate) use blob_suite;

/// Run every lease store contract against one store, as [`metadata_suite!`]
/// does: `$open` gives a future of `(Arc<dyn LeaseStore>, guard)` (or an
/// option of one).
macro_rules! lease_suite {
    ($open:expr) => {
        $crate::conformance::contracts!($open;
            leases::a_lease_has_one_holder_until_released,
            leases::an_expired_lease_is_taken_over,
            leases::a_finished_lease_tells_its_outcome_until_it_expires,
            leases::racing_askers_are_granted_once,
        );
    };
}
pub(crate) use lease_suite;

/// One `#[tokio::test]` per contract, each calling it with the fixture that
/// `$open` yields.
macro_rules! contracts {
    ($open:expr; $($group:ident :: $contract:ident),* $(,)?) => {
        $(
            // Two workers: the racing contracts race for real on backends
            // with several connections.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $contract() {
                let Some((fixture, _guard)) =
                    $crate::conformance::IntoFixture::into_fixture($open.await)
                else {
                    return; // The backend is not available here (said why).
                };
                $crate::conformance::$group::$contract(&fixture).await;
            }
        )*
    };
}
pub(crate) use contracts;

/// What a backend's `$open` yields: a fixture with its guard, or, for a
/// backend that may be absent (a database server named by an environment
/// variable), an option of one.
pub(crate) trait IntoFixture {
    /// The fixture the contracts take.
    type Fixture;
    /// What must live until the test ends.
    type Guard;
    /// The fixture and guard, or `None` to skip the test.
    fn into_fixture(self) -> Option<(Self::Fixture, Self::Guard)>;
}

impl<F, G> IntoFixture for (F, G) {
    type Fixture = F;
    type Guard = G;
    fn into_fixture(self) -> Option<(F, G)> {
        Some(self)
    }
}

impl<F, G> IntoFixture for Option<(F, G)> {
    type Fixture = F;
    type Guard = G;
    fn into_fixture(self) -> Option<(F, G)> {
        self
    }
}
