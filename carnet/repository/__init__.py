"""The XDS.b Document Repository actor: MTOM intake, blob store, ITI-41/ITI-43."""
