"""Use cases: resolve a target, check the rules, act, verify by reading back."""
