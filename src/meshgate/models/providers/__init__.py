"""Providers: one file per kind of upstream, each behind the port in :mod:`.base`."""
