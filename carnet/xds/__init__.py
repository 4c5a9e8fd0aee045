"""The XDS vocabulary shared by every actor: the domain model, its ebRIM 3.0 binding and error codes."""
