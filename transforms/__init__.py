"""The rules: one module a rule, found by `unleak.registry` without a hand-kept list."""
