"""DICOM without HTTP: parsing, DICOM JSON, the stored-instance record, export formats,
transcoding, rendering, QIDO-RS matching and the per-store search index."""
