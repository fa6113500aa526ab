-- Deleting an app's orphaned repositories asks which of their contents no other snapshot refers to.
CREATE INDEX snapshot_files_sha256 ON snapshot_files (sha256);
