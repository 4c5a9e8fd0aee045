"""Metadata validation for the XDS.b Document Registry (ITI-42, ITI-57, ITI-18 parameters)."""
