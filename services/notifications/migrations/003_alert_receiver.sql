-- The Alertmanager receiver an alert was sent to: `page` (someone acts now) or `ticket`
-- (someone looks today); empty for alerts stored before receivers existed.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS receiver text NOT NULL DEFAULT '';
