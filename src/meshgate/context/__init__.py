"""context domain."""
