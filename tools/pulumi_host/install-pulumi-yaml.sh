#!/usr/bin/env bash
# Make Pulumi's YAML language host (pulumi-language-yaml) available beside the cached Pulumi CLI
# and print the directory that holds both.
#
# The engine runs a `runtime: yaml` program through `pulumi-language-yaml`, looked up on PATH;
# the CLI we build from the Go module proxy does not bundle it. Like the CLI, it is built once
# from the Go module proxy (github.com/pulumi/pulumi-yaml, about a minute) into the CLI's
# directory of the cache (install-pulumi-cli.sh), and reused afterwards.
#
# Output: one line on stdout, the directory to put first on PATH; progress goes to stderr.
# Environment: PULUMI_YAML_VERSION (default below), those of install-pulumi-cli.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=${PULUMI_YAML_VERSION:-1.25.0}
cli_dir=$("$here/tools/pulumi_host/install-pulumi-cli.sh")
target="$cli_dir/pulumi-language-yaml"
stamp="$cli_dir/.pulumi-language-yaml.version"

if [[ -x "$target" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
  echo "$cli_dir"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-pulumi-yaml: no Go toolchain to build pulumi-language-yaml v$version; install Go" >&2
  echo "(https://go.dev/doc/install) or Pulumi's official CLI, which bundles the YAML host." >&2
  exit 1
fi

exec 9>"$cli_dir/.pulumi-language-yaml.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [[ -x "$target" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then
    echo "$cli_dir"
    exit 0
  fi
fi
echo "install-pulumi-yaml: building pulumi-language-yaml v$version from the Go module proxy into $cli_dir (first run only)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! GOBIN="$work" GOFLAGS="${GOFLAGS:-} -mod=mod" go install -trimpath -ldflags "-s -w" \
    "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@v$version" >&2; then
  echo "install-pulumi-yaml: building pulumi-language-yaml v$version with Go failed (see above)" >&2
  exit 1
fi
mv -f "$work/pulumi-language-yaml" "$target"
echo "$version" > "$stamp"
echo "$cli_dir"
