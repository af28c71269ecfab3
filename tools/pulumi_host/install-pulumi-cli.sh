#!/usr/bin/env bash
# Make a Pulumi CLI of the pinned version available and print the directory that holds it.
#
# Order of preference:
#   1. a `pulumi` already on PATH whose version is at least the pinned one (an official install
#      ships its own Python language host and dynamic-provider plugin next to it);
#   2. a CLI built earlier into the cache (outside the repo, survives between runs);
#   3. a fresh build of the pinned CLI from the Go module proxy into that cache (a few minutes).
# For 2 and 3 it also copies our plugin shims (tools/pulumi_host/plugins/: `pulumi-language-python`,
# `-nodejs`, `-go`, `pulumi-resource-pulumi-python`) next to the cached `pulumi`, where the engine
# looks for its bundled plugins: Pulumi's language hosts are not available from the module proxy.
# On a machine with neither Go nor a usable CLI it says how to install the CLI the official way.
#
# Output: one line on stdout, the directory to put first on PATH; progress goes to stderr.
# Environment: PULUMI_VERSION (default: the `# pulumi-cli==X` line of requirements/lock.txt; it
# may differ from the locked `pulumi` SDK, see the comment there), DICOM_TRANSFER_CACHE
# (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dicom-transfer), DICOM_TRANSFER_FORCE_BUILD=1 to
# ignore a `pulumi` on PATH.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lock="$here/requirements/lock.txt"
pinned=$(sed -n 's/^# pulumi-cli==\([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$lock" 2>/dev/null | head -n1)
version=${PULUMI_VERSION:-$pinned}
[[ -n "$version" ]] || { echo "install-pulumi-cli: no '# pulumi-cli==X.Y.Z' line in $lock" >&2; exit 2; }
cache=${DICOM_TRANSFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dicom-transfer}
target="$cache/pulumi-v$version"

version_at_least() {  # version_at_least HAVE WANT
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

install_shims() {  # install_shims BIN_DIR: copy changed shims atomically (other runs may use them)
  local shim name
  for shim in "$here"/tools/pulumi_host/plugins/*; do
    name=$(basename "$shim")
    if ! cmp -s "$shim" "$1/$name"; then
      cp "$shim" "$1/.$name.$$"
      chmod 755 "$1/.$name.$$"
      mv -f "$1/.$name.$$" "$1/$name"
    fi
  done
}

use_cached() {
  if [[ -x "$target/bin/pulumi" ]]; then
    install_shims "$target/bin"
    echo "$target/bin"
    exit 0
  fi
}

if command -v pulumi >/dev/null 2>&1 && [[ "${DICOM_TRANSFER_FORCE_BUILD:-}" != 1 ]]; then
  on_path=$(command -v pulumi)
  if [[ "$(dirname "$on_path")" != "$target/bin" ]]; then
    have=$(PULUMI_SKIP_UPDATE_CHECK=true pulumi version 2>/dev/null | sed 's/^v//; s/-.*//')
    if [[ -n "$have" ]] && version_at_least "$have" "$version"; then
      dirname "$on_path"
      exit 0
    fi
  fi
fi

use_cached

if ! command -v go >/dev/null 2>&1; then
  cat >&2 <<MSG
install-pulumi-cli: no Pulumi CLI >= $version on PATH and no Go toolchain to build one.
Install the CLI the official way (https://www.pulumi.com/docs/install/), e.g.
    curl -fsSL https://get.pulumi.com | sh -s -- --version $version
and put ~/.pulumi/bin on PATH, then run this command again.
MSG
  exit 1
fi

mkdir -p "$cache"
# One build at a time, also across concurrent test runs; the winner's result serves the others.
exec 9>"$target.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  use_cached
fi

echo "install-pulumi-cli: building Pulumi CLI v$version from the Go module proxy into $target (first run only; takes a few minutes)" >&2
work="$target.build"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
# pkg/v3's go.mod carries replace directives, so `go install pkg@version` refuses it; a wrapper
# module that requires it, with the non-local replaces copied, builds it.
cat > go.mod <<MOD
module dicomtransfer.local/pulumicli

go 1.25

replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
export GOFLAGS="${GOFLAGS:-} -mod=mod"
if ! go get "github.com/pulumi/pulumi/pkg/v3@v$version" "github.com/pulumi/pulumi/sdk/v3@v$version" >&2 ||
   ! go build -trimpath -o "$work/bin/pulumi" \
       -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version" \
       github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2; then
  cat >&2 <<MSG
install-pulumi-cli: building Pulumi CLI v$version with Go failed (see above). If this machine
cannot reach the Go module proxy, install the CLI the official way instead:
    curl -fsSL https://get.pulumi.com | sh -s -- --version $version
MSG
  exit 1
fi
install_shims "$work/bin"
mkdir -p "$target"
rm -rf "$target/bin"
mv "$work/bin" "$target/bin"
cd "$cache"
rm -rf "$work"
echo "$target/bin"
