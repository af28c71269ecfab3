"""The emulated Cloud Healthcare API: state, import/export operations, request rules, IAM,
DICOMweb and the routes of the methods it does not emulate."""
