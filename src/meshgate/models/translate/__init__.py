"""Pure translations between API shapes (no I/O)."""
