"""SOAP 1.2 transport support for the XDS.b endpoints."""
