"""Conformance tooling: replaying the NIST XDS Toolkit test data (ebRIM 2.1 -> 3.0, metadata preparation)."""
