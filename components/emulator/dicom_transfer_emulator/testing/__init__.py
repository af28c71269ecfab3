"""Helpers for users of the emulator: start it as a process, point Google's clients at it,
seed it with a store, buckets and DICOM files."""
