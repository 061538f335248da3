"""Cost and safety at the gateway: prices, spend, budgets, response cache, guardrails."""
