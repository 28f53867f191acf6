"""Output: Arrow schemas, Parquet shards, the manifest and resume. Knows no search internals."""
