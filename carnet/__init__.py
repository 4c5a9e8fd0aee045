"""Carnet: an IHE XDS.b Document Registry and Repository with an MHD/PDSm facade."""

__version__ = "0.1.0"
