"""Glue that lets the Pulumi CLI run programs on machines without Pulumi's Go plugins.

Development tooling of the dicom-transfer repository (demo, tests, benchmarks); not part of the
``dicom-transfer`` library.

``language``        the ``pulumi-language-{python,nodejs,go}`` plugins: a LanguageRuntime server.
``runtimes``        what a language contributes (how its program starts) and the facts all get.
``python_runtime``  Python programs: ``run_program`` under the project's interpreter.
``interpreter``     which Python runs a project's program (``virtualenv`` option, VIRTUAL_ENV, ...).
``run_program``     the script that interpreter executes; it imports nothing but ``pulumi``.
``nodejs_runtime``  Node.js programs: the project's ``@pulumi/pulumi/cmd/run``.
``go_runtime``      Go programs: ``go build``, then the binary under ``PULUMI_*`` variables.
``environment``     the offline environment for the CLI (backend, passphrase, PATH, no downloads).

Only the standard library, ``pulumi`` and ``grpc`` may be imported here.
"""
