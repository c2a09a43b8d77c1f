#!/usr/bin/env bash
# Installs swarm for the GitHub Action (action.yml) and prints nothing but logs on
# stderr; the path of the binary goes to $GITHUB_OUTPUT as `bin=PATH`, and its folder
# to $GITHUB_PATH so later steps can call `swarm` too.
#
# Where the binary comes from, first match wins:
#   1. SWARM_BINARY: a binary already on disk (used as is; this is how the script is
#      tested offline, and how a workflow can bring its own build);
#   2. a release binary for the runner (Linux x86-64/arm64, macOS arm64), downloaded
#      from the GitHub release named SWARM_VERSION (default: the action's ref) and
#      checked against its published sha256. A checksum mismatch is fatal, never a
#      reason to fall back;
#   3. `cargo install --locked`, from the action's own checkout when it carries the
#      sources (it does when the action is used from a repository), else from git.
#
# Inputs (environment):
#   SWARM_BINARY        path to a swarm binary to use instead of installing one
#   SWARM_VERSION       release tag to download, e.g. v0.3.0 (default: SWARM_ACTION_REF)
#   SWARM_INSTALL       auto (default) | release | cargo
#   SWARM_RELEASE_URL   base URL of the release assets (default:
#                       $GITHUB_SERVER_URL/$SWARM_ACTION_REPOSITORY/releases/download/$SWARM_VERSION)
#   SWARM_ACTION_REPOSITORY, SWARM_ACTION_REF, GITHUB_ACTION_PATH: set by action.yml
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TEMP, RUNNER_TOOL_CACHE: set by GitHub
set -euo pipefail

log() { printf 'swarm-action: %s\n' "$*" >&2; }
die() {
	printf '::error title=swarm install::%s\n' "$*"
	exit 1
}

# Appends `name=value` to $GITHUB_OUTPUT (when set).
output() {
	if [[ -n "${GITHUB_OUTPUT:-}" ]]; then
		printf '%s=%s\n' "$1" "$2" >>"$GITHUB_OUTPUT"
	fi
}

# Records the binary and makes it callable by later steps.
use_binary() {
	local bin=$1
	[[ -f "$bin" && -x "$bin" ]] || die "not an executable file: $bin"
	# Absolute, so the check step finds it from any working directory.
	bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
	log "using $bin ($("$bin" --version 2>/dev/null || echo 'unknown version'))"
	output bin "$bin"
	if [[ -n "${GITHUB_PATH:-}" ]]; then
		dirname "$bin" >>"$GITHUB_PATH"
	fi
	exit 0
}

# The Rust target triple of the release binary for this runner, or nothing.
release_target() {
	case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
	Linux/X64) echo x86_64-unknown-linux-musl ;;
	Linux/ARM64) echo aarch64-unknown-linux-musl ;;
	macOS/ARM64) echo aarch64-apple-darwin ;;
	*) echo "" ;;
	esac
}

sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum "$1" | cut -d' ' -f1
	else
		shasum -a 256 "$1" | cut -d' ' -f1
	fi
}

# Downloads URL to FILE; returns 1 when the server has no such file (so the caller can
# fall back), and dies on any other error.
download() {
	local url=$1 file=$2 status
	status=$(curl --silent --show-error --location --retry 3 --output "$file" --write-out '%{http_code}' "$url") ||
		die "download failed: $url"
	case "$status" in
	200) return 0 ;;
	404) return 1 ;;
	*) die "download failed with HTTP $status: $url" ;;
	esac
}

# Tries the release binary; returns 1 when no release binary exists for this runner.
install_release() {
	local target version base dir archive sums expected actual
	target=$(release_target)
	if [[ -z "$target" ]]; then
		log "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}"
		return 1
	fi
	version=${SWARM_VERSION:-${SWARM_ACTION_REF:-}}
	if [[ -z "$version" && -z "${SWARM_RELEASE_URL:-}" ]]; then
		log "no version to download (the action's ref is unknown)"
		return 1
	fi
	base=${SWARM_RELEASE_URL:-${GITHUB_SERVER_URL:-https://github.com}/${SWARM_ACTION_REPOSITORY:-}/releases/download/$version}
	dir="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:-/tmp}}/swarm/${version:-custom}/$target"
	if [[ -x "$dir/swarm" ]]; then
		log "found a cached release binary"
		use_binary "$dir/swarm"
	fi
	mkdir -p "$dir"
	archive="$dir/swarm-$target.tar.gz"
	sums="$archive.sha256"
	log "downloading $base/swarm-$target.tar.gz"
	if ! download "$base/swarm-$target.tar.gz" "$archive"; then
		log "no release asset swarm-$target.tar.gz at $base"
		rm -f "$archive"
		return 1
	fi
	download "$base/swarm-$target.tar.gz.sha256" "$sums" ||
		die "the release has no checksum file swarm-$target.tar.gz.sha256; refusing an unverified binary"
	expected=$(tr -s ' \t' ' ' <"$sums" | cut -d' ' -f1 | tr 'A-F' 'a-f' | head -n1)
	actual=$(sha256_of "$archive")
	if [[ ! "$expected" =~ ^[0-9a-f]{64}$ ]]; then
		die "malformed checksum file for swarm-$target.tar.gz"
	fi
	if [[ "$expected" != "$actual" ]]; then
		rm -f "$archive"
		die "sha256 mismatch for swarm-$target.tar.gz: expected $expected, got $actual"
	fi
	log "sha256 verified: $actual"
	tar -xzf "$archive" -C "$dir"
	rm -f "$archive" "$sums"
	[[ -x "$dir/swarm" ]] || die "the archive swarm-$target.tar.gz has no executable named swarm"
	use_binary "$dir/swarm"
}

install_cargo() {
	local root="${RUNNER_TEMP:-/tmp}/swarm-cargo"
	command -v cargo >/dev/null 2>&1 || die "no release binary for this runner and no cargo to build one (add a Rust toolchain step before swarm)"
	if [[ -n "${GITHUB_ACTION_PATH:-}" && -f "$GITHUB_ACTION_PATH/Cargo.toml" ]]; then
		log "building from source: cargo install --locked --path $GITHUB_ACTION_PATH"
		cargo install --locked --root "$root" --path "$GITHUB_ACTION_PATH" >&2
	else
		local repo="${GITHUB_SERVER_URL:-https://github.com}/${SWARM_ACTION_REPOSITORY:?the action repository is unknown}"
		local ref=${SWARM_VERSION:-${SWARM_ACTION_REF:-}}
		log "building from source: cargo install --locked --git $repo ${ref:+--rev $ref}"
		cargo install --locked --root "$root" --git "$repo" ${ref:+--rev "$ref"} swarm >&2
	fi
	if [[ -f "$root/bin/swarm.exe" ]]; then
		use_binary "$root/bin/swarm.exe" # Windows runners
	fi
	use_binary "$root/bin/swarm"
}

if [[ -n "${SWARM_BINARY:-}" ]]; then
	use_binary "$SWARM_BINARY"
fi
case "${SWARM_INSTALL:-auto}" in
auto) install_release || install_cargo ;;
release) install_release || die "no release binary for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?} at version ${SWARM_VERSION:-${SWARM_ACTION_REF:-?}}" ;;
cargo) install_cargo ;;
*) die "install must be auto, release or cargo, not '${SWARM_INSTALL}'" ;;
esac
