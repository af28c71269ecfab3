#!/usr/bin/env bash
# Build tools/sdkgen once into the cache beside the Pulumi CLI and print the executable's path.
#
# The build is keyed by a hash of the program's sources (go.mod, go.sum, *.go): a changed
# generator builds afresh, an unchanged one is reused across checkouts and runs. It needs Go and
# the Go module proxy the first time (about 2 minutes on 2 cores, most of it shared with the
# CLI's build cache); progress goes to stderr.
# Environment: DICOM_TRANSFER_CACHE (default: ${XDG_CACHE_HOME:-$HOME/.cache}/dicom-transfer).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${DICOM_TRANSFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dicom-transfer}
key=$(cat "$here/go.mod" "$here/go.sum" "$here"/*.go | sha256sum | cut -c1-16)
target="$cache/sdkgen-$key/sdkgen"
if [[ -x "$target" ]]; then
  echo "$target"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "sdkgen: building tools/sdkgen needs Go 1.25 or newer (https://go.dev/doc/install) and the Go module proxy" >&2
  exit 1
fi
mkdir -p "$(dirname "$target")"
exec 9>"$target.lock"
command -v flock >/dev/null 2>&1 && flock 9
if [[ ! -x "$target" ]]; then
  echo "sdkgen: building tools/sdkgen into $(dirname "$target") (first run only)" >&2
  (cd "$here" && go build -trimpath -o "$target.tmp" .) >&2
  mv -f "$target.tmp" "$target"
fi
echo "$target"
