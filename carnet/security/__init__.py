"""Security seams: who is asking (principal), may they (policy), and the trace (audit)."""
