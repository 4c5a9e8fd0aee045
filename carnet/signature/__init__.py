"""Signed payloads: IHE DSG signature documents and the DMP's XAdES submission-set signature.

A signature travels as a document of its own in the submission it signs. This package
recognises those documents on Provide and Register, verifies them (XML signature integrity,
signer chain against the configured trust store, every manifest digest against the bytes
actually received), records who signed what, seals unsigned submissions with an organisation
certificate when configured, and backs the ``carnet sign`` / ``carnet verify`` commands.

    vocabulary.py  namespaces, algorithm URIs, DSG / DMP codes
    xmldsig.py     XML Signature core: canonicalisation, references, signature values
    xades.py       XAdES QualifyingProperties (v1.1.1 for the DMP legacy form, v1.3.2 for DSG)
    trust.py       trust anchors and CRLs from CARNET_TRUST_STORE, chain validation
    verify.py      verify one signature document against the documents it names
    dsg.py         produce DSG detached and submission-set signatures and their metadata
    seal.py        the repository's organisation seal for unsigned submissions
    submission.py  the ITI-41 (and ITI-65) step: policy, verification, sealing, recording
    records.py     the tables of verified signatures and what they cover
    query.py       the GetDocumentSignatures stored query
    service.py     the configured policy, trust store and sealer
    cli.py         ``carnet sign`` and ``carnet verify``
"""
