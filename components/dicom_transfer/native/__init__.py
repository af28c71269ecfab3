"""The native Pulumi provider ``dicomtransfer``: its schema and the plugin's gRPC adapter.

``schema`` is pure (the package schema from :mod:`dicom_transfer.specs.inputs`); ``values``
converts property values; ``provider`` adapts the SDK's provider interface
(``pulumi.provider.experimental``) to :mod:`dicom_transfer.lifecycle`; ``engine_log`` shows
progress on the resource's row; ``server`` is the console script
``pulumi-resource-dicomtransfer``.
"""
