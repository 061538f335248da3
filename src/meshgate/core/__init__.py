"""What every layer shares and nothing else: request-scope keys, secret files, ports, the
route helpers and the service registry. It imports no domain, the gateway, app or cli."""
