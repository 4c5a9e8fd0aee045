"""The XDS.b Document Registry actor: metadata validation, index and stored queries."""
