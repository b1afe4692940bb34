-- An interval's readings across every building (the console's interval view, the energy
-- office's per-interval reports) without scanning each building's key range.
CREATE INDEX readings_by_interval ON readings (interval_start, register);
