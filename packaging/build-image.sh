#!/usr/bin/env bash
# Build the entrepot container image from the Containerfile with podman.
#
#   packaging/build-image.sh [--tag NAME] [--prebuilt BIN] [--debootstrap] [-- PODMAN_BUILD_ARGS...]
#
#   --tag NAME      the image's name (default localhost/entrepot:latest).
#   --prebuilt BIN  put BIN in the image (ENTREPOT_BIN=prebuilt) instead of
#                   compiling it in docker.io/library/rust, e.g.
#                   target/release/entrepot after
#                   `cargo build --release --locked -p entrepot`. Build BIN on
#                   Debian bookworm (or an older glibc): the image runs bookworm.
#   --debootstrap   make the Debian bookworm base with debootstrap from a
#                   Debian mirror ($DEBIAN_MIRROR, default
#                   http://deb.debian.org/debian) instead of pulling
#                   docker.io/library/debian:bookworm-slim: for machines that
#                   reach a Debian mirror but no container registry. Needs
#                   root and debootstrap; the base is kept as
#                   $ENTREPOT_BASE_IMAGE (default
#                   localhost/entrepot-base/debian:bookworm) and reused.
#   -- ARGS         passed to `podman build` (e.g. --runtime runc).
#
# The image's RUN step installs ca-certificates with apt from the same
# mirror, so the build needs the network (`--network=host` is passed).
# The last line printed is the image's name.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

tag=localhost/entrepot:latest
prebuilt=
debootstrap=
extra=()
while (($#)); do
    case "$1" in
        --tag) tag="$2"; shift 2 ;;
        --prebuilt) prebuilt="$2"; shift 2 ;;
        --debootstrap) debootstrap=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-image.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

command -v podman >/dev/null || { echo "build-image.sh: podman is not installed (apt-get install -y podman)" >&2; exit 1; }

build_args=()
if [[ -n "$debootstrap" ]]; then
    base="${ENTREPOT_BASE_IMAGE:-localhost/entrepot-base/debian:bookworm}"
    mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
    if ! podman image exists "$base"; then
        command -v debootstrap >/dev/null || { echo "build-image.sh: --debootstrap needs debootstrap (apt-get install -y debootstrap)" >&2; exit 1; }
        rootfs="$(mktemp -d /tmp/entrepot-rootfs.XXXXXX)"
        trap 'rm -rf --one-file-system "$rootfs"' EXIT
        echo "build-image.sh: debootstrap bookworm from $mirror into $rootfs" >&2
        debootstrap --variant=minbase bookworm "$rootfs/root" "$mirror" >"$rootfs/debootstrap.log" 2>&1 || {
            tail -20 "$rootfs/debootstrap.log" >&2
            echo "build-image.sh: debootstrap failed (log above)" >&2
            exit 1
        }
        # As debian:bookworm-slim: no package cache, no downloaded lists.
        rm -rf "$rootfs"/root/var/cache/apt/archives/*.deb "$rootfs"/root/var/lib/apt/lists/*
        tar --numeric-owner -C "$rootfs/root" -c . |
            podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
        echo "build-image.sh: base image $base imported" >&2
    fi
    build_args+=(--build-arg "BASE_IMAGE=$base")
fi

if [[ -n "$prebuilt" ]]; then
    [[ -x "$prebuilt" ]] || { echo "build-image.sh: $prebuilt is not an executable file" >&2; exit 1; }
    # A context of its own with only what the prebuilt stages copy: the
    # repository's target/ (gigabytes) is never sent.
    context="$(mktemp -d /tmp/entrepot-context.XXXXXX)"
    trap 'rm -rf --one-file-system "$context" ${rootfs:+"$rootfs"}' EXIT
    install -D -m 0755 "$prebuilt" "$context/dist/entrepot"
    install -D -m 0644 "$repo/packaging/entrepot.toml" "$context/packaging/entrepot.toml"
    build_args+=(--build-arg ENTREPOT_BIN=prebuilt)
else
    context="$repo"
fi

podman build --network=host "${build_args[@]}" ${extra[@]+"${extra[@]}"} \
    -t "$tag" -f "$repo/Containerfile" "$context" >&2
echo "$tag"
