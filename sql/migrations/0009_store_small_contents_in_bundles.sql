-- Small contents are stored many to an object (a bundle, named by its SHA-256), so a scan writes and a delivery
-- reads many with one request. A file's row says where its content sits; NULL: an object of its own, named by the
-- content's SHA-256, as every content was stored before this migration.
ALTER TABLE snapshot_files
    ADD COLUMN bundle bytea CHECK (length(bundle) = 32),
    ADD COLUMN bundle_offset bigint CHECK (bundle_offset >= 0),
    ADD CONSTRAINT snapshot_files_bundle_slot CHECK ((bundle IS NULL) = (bundle_offset IS NULL));

-- Deleting an app's orphaned repositories asks which bundles no other snapshot refers to.
CREATE INDEX snapshot_files_bundle ON snapshot_files (bundle) WHERE bundle IS NOT NULL;
