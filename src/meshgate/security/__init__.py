"""Platform security: upstream credentials, the egress policy and the edge limits."""
