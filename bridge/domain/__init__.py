"""Pure domain: money, provider-neutral events and states. Standard library only."""
