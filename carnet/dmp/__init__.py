"""The patient's DMP (Dossier Médical Partagé): dossier lifecycle, consent and authorisations,
the existence test (TD0.2), authorisation management (TD0.3), traces and notifications.

Modules are named after the DMP terms: ``models`` (tables), ``dossier`` (create, close,
reactivate, médecin traitant, oppositions), ``consent`` (authorisations granted to a professional
or a structure), ``td02`` (HL7v3 existence test), ``td03`` (setAuthorization), ``traces`` (who
accessed the record), ``notifications`` (outbox and SMTP delivery), ``endpoint`` (SOAP services),
``fhir`` (Consent and AuditEvent), ``cli`` (the ``carnet dossier``/``audit``/``notifications``
commands). The access decisions themselves live in ``carnet.security.dmp_policy``.
"""
