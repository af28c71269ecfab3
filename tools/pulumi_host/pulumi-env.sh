#!/usr/bin/env bash
# Print the environment under which `pulumi` runs offline against a local state directory:
#     eval "$(tools/pulumi_host/pulumi-env.sh)"            # shell: export lines
#     tools/pulumi_host/pulumi-env.sh --format json        # one JSON object (for tests and tools)
# It locates or builds the CLI (tools/pulumi_host/install-pulumi-cli.sh; build progress goes to stderr) and
# sets PATH (CLI directory, then tools/pulumi_host/plugins), PULUMI_HOME and PULUMI_BACKEND_URL
# (file backend) under the state directory, PULUMI_CONFIG_PASSPHRASE (unless one is set),
# PULUMI_SKIP_UPDATE_CHECK, PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION and
# DICOM_TRANSFER_PYTHON (the interpreter of our language host and, by default, of programs).
#
# Your own stack: run it in your project's directory; its state then stays with that project,
# in ./.pulumi-state (not in the checkout, whose .pulumi-state `make clean` deletes).
#
# Environment: DICOM_TRANSFER_PULUMI_STATE (default: ./.pulumi-state, in the current directory),
# DICOM_TRANSFER_PYTHON (default: <checkout>/.venv/bin/python), and those of install-pulumi-cli.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${DICOM_TRANSFER_PYTHON:-$here/.venv/bin/python}
if [[ ! -x "$python" ]]; then
  echo "pulumi-env: $python not found; create the virtualenv first (make setup)" >&2
  exit 1
fi
cli_dir=$("$here/tools/pulumi_host/install-pulumi-cli.sh")
exec "$python" -m dicom_transfer_pulumi_host.environment \
  --cli-dir "$cli_dir" \
  --plugins-dir "$here/tools/pulumi_host/plugins" \
  --state-dir "${DICOM_TRANSFER_PULUMI_STATE:-$PWD/.pulumi-state}" \
  --python "$python" \
  "$@"
