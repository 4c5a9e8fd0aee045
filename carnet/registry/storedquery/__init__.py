"""ITI-18 Registry Stored Query: parameters, the query catalogue and its execution."""
