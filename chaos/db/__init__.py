"""The native stack's database kept safe: base backups, the WAL archive and
point-in-time restore (`chaoslab db ...`)."""
