"""The emulated BigQuery tables that ``dicomStores.export`` writes, and the rows it writes."""
