"""Helpers of the end-to-end tier: the real Pulumi CLI, driven offline against the emulator.

``pulumi_cli`` runs the CLI; ``dicom_stack`` and ``native_stack`` write projects on the dynamic
and the native provider; ``language_projects`` copies the Node.js and Go projects;
``process_session`` finds and signals a CLI's whole process tree.
"""
