"""The FHIR facade: IHE MHD 4.2.3 Document Recipient and Responder (FHIR R4 4.0.1) with the ANS
PDSm 3.1.1 extensions, over the same registry and repository as the XDS.b endpoints.

Modules follow the MHD terms: ``iti65`` (Provide Document Bundle), ``iti66`` (Find Document
Lists), ``iti67`` (Find Document References), ``iti68`` (Retrieve Document), ``metadataupdate``
(PDSm PATCH, the FHIR face of ITI-57); ``documentreference`` and ``listresource`` are the XDS <->
FHIR translators, ``endpoint`` the Flask blueprint mounted at ``/fhir``.
"""
