"""The state transition function: a pure function of (state, block), one module per concern.

Imports nothing from `chain` or `inference`; runnable and testable alone. This package file
imports nothing either, so that importing one module (say `runtime.hashing`) does not load the
whole runtime: the executive is `runtime.executive`, the registry `runtime.registry`, genesis
`runtime.genesis`, and each module its own file or package (docs/runtime.md).
"""
