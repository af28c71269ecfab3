"""The emulated Cloud Storage: the port the Healthcare side uses, Cloud Storage's rules
(model), the memory and file backends with their shared index, domain errors, and the JSON
API routes (the one place those errors become HTTP)."""
