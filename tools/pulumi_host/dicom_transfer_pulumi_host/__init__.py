"""Glue that lets the Pulumi CLI run Python programs on machines without Pulumi's Go plugins.

Development tooling of the dicom-transfer repository (demo, tests, benchmarks); not part of the
``dicom-transfer`` library.

``language``     the ``pulumi-language-python`` plugin: a LanguageRuntime gRPC server.
``interpreter``  which Python runs a project's program (``virtualenv`` option, VIRTUAL_ENV, ...).
``run_program``  the script that interpreter executes; it imports nothing but ``pulumi``.
``environment``  the offline environment for the CLI (backend, passphrase, PATH, no downloads).

Only the standard library, ``pulumi`` and ``grpc`` may be imported here.
"""
