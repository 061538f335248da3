"""The Context Mesh: what each AI service may know about a user, served fast.

- ``base.ContextStore``: the storage port; ``backends/`` memory, SQLite (default, durable)
  and Redis (scale-out), one contract suite over all three.
- ``service.ContextService``: ``platform.context``; users (merge patch, ETag), sessions with
  a TTL, interactions, ``resolve`` through a consumer's policy, export and erasure.
- ``policy``: policies compiled once into selection trees; deny by default.
- ``cache`` and ``invalidation``: the read-through cache of every process and the Redis
  pub/sub that keeps the caches of all processes coherent.
- ``handle``: signed, opaque context handles for outbound baggage.
- ``routes``: ``/v1/context/...`` as in the public API.

Kept light on purpose: the settings model imports ``meshgate.context.config`` at start.
"""
