"""CDA R2 documents of the CI-SIS: XDS metadata from the header, validation (XSD + schematron)."""
