"""A trial's peak memory, estimated before it launches from the base model's config alone: its
shape (`shape`), what a configuration holds at its peak (`estimate`), and whether it fits a
device (`device`)."""
