-- Why an auto device has its profile (issue 12): the sysObjectID seen, the rule that
-- chose the profile, and when. Same table and key (site, device) as 0001's; rows written
-- before carry '' and NULL, as the SQLite store reads its older records.

ALTER TABLE device_profiles ADD COLUMN IF NOT EXISTS sys_object_id text NOT NULL DEFAULT '';
ALTER TABLE device_profiles ADD COLUMN IF NOT EXISTS reason text NOT NULL DEFAULT '';
ALTER TABLE device_profiles ADD COLUMN IF NOT EXISTS identified_ts double precision;
