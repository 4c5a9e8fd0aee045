"""Tests for carnet.registry.validate.datatypes: the XDS / HL7 v2.5 datatype validators.

Valid examples include real slot values from the dcm4chee-xds2 stored-query fixture
(single_doc.xml) and the examples of ITI TF-3; invalid ones pin the reason returned, so a
regression that rejects for the wrong rule shows up here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from carnet.registry.validate import datatypes as dt

Check = Callable[[str], "str | None"]

# (validator, value) pairs that must be accepted.
VALID: list[tuple[Check, str]] = [
    # OID
    (dt.check_oid, "1.2.3"),
    (dt.check_oid, "0.0"),
    (dt.check_oid, "2.999"),
    (dt.check_oid, "1.19.6.24.109.42.1"),  # dcm4chee repositoryUniqueId
    (dt.check_oid, "1.3.6.1.4.1.21367.2005.3.7"),
    (dt.check_oid, "1.2.0.10"),
    (dt.check_oid, "1." + "1" * 62),  # exactly 64 characters
    # UUID
    (dt.check_uuid, "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"),
    (dt.check_uuid, "urn:uuid:7EDCA82F-054D-47F2-A032-9B2A5B5186C1"),
    # homeCommunityId
    (dt.check_home_community_id, "urn:oid:1.3.6.1.4.1.21367.13.70.101"),
    # DocumentEntry.uniqueId
    (dt.check_document_unique_id, "1.2.3.4.5"),
    # The dcm4chee/NIST seed sourcePatientId: first arc 3 is accepted, as IPF and NIST do.
    (dt.check_cx, "89765a87b^^^&3.4.5&ISO"),
    (dt.check_document_unique_id, "1.2.3.4.5^abc-123"),
    (dt.check_document_unique_id, "1.2.3^" + "x" * 16),
    (dt.check_document_unique_id, "1." + "2" * 62 + "^" + "e" * 16),
    # SubmissionSet / Folder uniqueId
    (dt.check_registry_package_unique_id, "1.3.6.1.4.1.21367.2005.3.99.1.1010"),
    # DTM, all precisions; dcm4chee creationTime / serviceStartTime / submissionTime
    (dt.check_dtm, "2005"),
    (dt.check_dtm, "200512"),
    (dt.check_dtm, "20061224"),
    (dt.check_dtm, "2006122408"),
    (dt.check_dtm, "200612230800"),
    (dt.check_dtm, "20041225235050"),
    (dt.check_dtm, "20240229"),  # leap day
    (dt.check_dtm, "20000229"),  # divisible by 400: leap
    (dt.check_dtm, "19991231235959"),
    (dt.check_dtm, "20240131000000"),
    # hash / size
    (dt.check_hash, "e543712c0e10501972de13a5bfcbe826c49feb75"),  # dcm4chee
    (dt.check_hash, "E543712C0E10501972DE13A5BFCBE826C49FEB75"),
    (dt.check_size, "36"),
    (dt.check_size, "0"),
    (dt.check_size, "123456789012345"),
    # mimeType
    (dt.check_mime_type, "text/plain"),
    (dt.check_mime_type, "text/xml"),
    (dt.check_mime_type, "application/pdf"),
    (dt.check_mime_type, "application/fhir+xml"),
    (dt.check_mime_type, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (dt.check_mime_type, "application/x-hl7"),
    # languageCode
    (dt.check_language_code, "en-us"),  # dcm4chee
    (dt.check_language_code, "fr-FR"),
    (dt.check_language_code, "fr"),
    (dt.check_language_code, "i-klingon"),
    (dt.check_language_code, "zh-Hant-TW"),
    (dt.check_language_code, "es-419"),
    # ISO HD
    (dt.check_iso_hd, "&1.2.3&ISO"),
    # CX: patientId / sourcePatientId
    (dt.check_cx, "IHEBLUE-2737^^^&1.3.6.1.4.1.21367.13.20.1000&ISO"),
    (dt.check_cx, "pid1^^^&1.2.3&ISO"),
    (dt.check_cx, "8c8b0a11b5554dc^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"),
    (dt.check_cx, "abc^^^&1.2.3&ISO^"),  # trailing empty component is absent in HL7
    # CXi: referenceIdList
    (dt.check_cxi, "112233^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession"),  # dcm4chee
    (dt.check_cxi, "1.2.3.12.78.23^^^^urn:ihe:iti:xds:2013:uniqueId"),  # dcm4chee
    (dt.check_cxi, "11379^^^ABCD&1.3.6367.3.7&ISO^urn:ihe:iti:xds:2013:uniqueId"),
    (dt.check_cxi, "11379^^^ABCD^urn:ihe:iti:xds:2013:uniqueId^^^^"),
    (dt.check_cxi, "11379^^^&1.3.6367.3.7&ISO^urn:ihe:iti:xds:2013:uniqueId^"),
    (dt.check_cxi, "ref-9^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:referral"),
    (dt.check_cxi, "ord-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:order"),
    (dt.check_cxi, "wf-1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:workflowInstanceId"),
    (dt.check_cxi, "enc-7^^^&1.2.3&ISO^urn:ihe:iti:xds:2015:encounterId"),
    (dt.check_cxi, "x-1^^^NS&https://example.org/ids&URI^urn:example:local"),
    (dt.check_cxi, "112233^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession^&urn:oid:1.2.3.4&ISO"),
    (dt.check_cxi, "112233^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession^&1.2.3.4&ISO"),
    # XCN: authorPerson, legalAuthenticator
    (dt.check_xcn, "^Smitty^Gerald^^^"),  # dcm4chee authorPerson
    (dt.check_xcn, "^Dopplemeyer^Sherry^^^"),  # dcm4chee authorPerson
    (dt.check_xcn, "^Welby"),  # family name only
    (dt.check_xcn, "11375^Welby^Marcus^J^Jr. MD^Dr^MD^^&1.2.840.113619.6.197&ISO"),
    (dt.check_xcn, "11375"),  # id only; XCN.9 is "if available"
    (dt.check_xcn, "^van&der&Berg^Jan"),  # family name with FN subcomponents
    (dt.check_xcn, "^Welby^^^^^^^&1.2.3&ISO"),  # authority without id is harmless
    # XON: authorInstitution
    (dt.check_xon, "Cleveland Clinic"),  # dcm4chee
    (dt.check_xon, "Parma Community"),  # dcm4chee
    (dt.check_xon, "Some Hospital^^^^^&1.2.3.4.5.6.7.8.9.1789&ISO^^^^45"),  # ITI TF-3 example
    (dt.check_xon, "Some Hospital^^^^^^^^^1.2.3.4.5.6.7.8.9.1789.45"),  # OID in XON.10 alone
    (dt.check_xon, "Some Hospital^^^^^&1.2.3&ISO"),
    (dt.check_xon, "Some Hospital^^^^^^^^^"),
    # XTN: authorTelecommunication
    (dt.check_xtn, "^^Internet^a@x.ua"),
    (dt.check_xtn, "^NET^Internet^marcus.welby@example.org^^^^^"),
    (dt.check_xtn, "^^PH^^11^22^33^44^"),
    (dt.check_xtn, "^PRN^PH^^^^33^^"),
    (dt.check_xtn, "^WPN^CP^^33^6^12345678"),
    (dt.check_xtn, "^PRN^CP^^^^^^^^^8 (0622) 90-66-83^^^"),
    (dt.check_xtn, "^WPN^FX^^^^^^^^^+33123456789"),
    (dt.check_xtn, "^^X.400^c=FR;a=ATLAS;p=ORG;s=DUPONT"),
    # sourcePatientInfo (dcm4chee values first)
    (dt.check_source_patient_info, "PID-3|pid1^^^&1.2.3&ISO"),
    (dt.check_source_patient_info, "PID-5|Doe^John^^^"),
    (dt.check_source_patient_info, "PID-7|19560527"),
    (dt.check_source_patient_info, "PID-8|M"),
    (dt.check_source_patient_info, "PID-11|100 Main St^^Metropolis^Il^44130^USA"),
    (dt.check_source_patient_info, "PID-3|a^^^&1.2&ISO~b^^^&1.3&ISO"),  # repetitions are fine here
    (dt.check_source_patient_info, "PID-7|1956"),
    (dt.check_source_patient_info, "PID-7|195605271230"),
    (dt.check_source_patient_info, "PID-8|U"),
    (dt.check_source_patient_info, "PID-8|A"),
    (dt.check_source_patient_info, "PID-8|N"),
    (dt.check_source_patient_info, "PID-8|O"),
    (dt.check_source_patient_info, "PID-6|Martin"),  # other non-deprecated fields are allowed
    (dt.check_source_patient_info, "PID-13|^PRN^PH^^^^^^^^^0123456789"),
    (dt.check_source_patient_info, "PID-11|"),
    # intendedRecipient
    (dt.check_intended_recipient, "Some Hospital|^Welby^Marcus^^^Dr^MD|^^Internet^mwelby@example.org"),
    (dt.check_intended_recipient, "Some Hospital^^^^^&1.2.3.4.5.6.7.8.9.1789&ISO^^^^45"),
    (dt.check_intended_recipient, "|^Welby^Marcus"),
    (dt.check_intended_recipient, "||^^Internet^mwelby@example.org"),
    (dt.check_intended_recipient, "Some Hospital|"),
    (dt.check_intended_recipient, "|11375^^^^^^^^&1.2.3&ISO|"),
]

# (validator, value, substring of the expected reason) triples that must be rejected.
INVALID: list[tuple[Check, str, str]] = [
    # OID
    (dt.check_oid, "", "empty"),
    (dt.check_oid, "1", "at least two arcs"),
    (dt.check_oid, "1.02.3", "leading zeros"),
    (dt.check_oid, "01.2", "leading zeros"),
    (dt.check_oid, "1..2", "dot-separated"),
    (dt.check_oid, "1.2.", "dot-separated"),
    (dt.check_oid, ".1.2", "dot-separated"),
    (dt.check_oid, "1.2.a", "dot-separated"),
    (dt.check_oid, "urn:oid:1.2.3", "dot-separated"),
    (dt.check_oid, " 1.2.3", "dot-separated"),
    (dt.check_oid, "1." + "1" * 63, "maximum is 64"),
    # UUID
    (dt.check_uuid, "7edca82f-054d-47f2-a032-9b2a5b5186c1", "must start with 'urn:uuid:'"),
    (dt.check_uuid, "URN:UUID:7edca82f-054d-47f2-a032-9b2a5b5186c1", "must start with 'urn:uuid:'"),
    (dt.check_uuid, "urn:uuid:7edca82f054d47f2a0329b2a5b5186c1", "expected urn:uuid:"),
    (dt.check_uuid, "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186cg", "expected urn:uuid:"),
    (dt.check_uuid, "urn:uuid:{7edca82f-054d-47f2-a032-9b2a5b5186c1}", "expected urn:uuid:"),
    (dt.check_uuid, "Document01", "must start with 'urn:uuid:'"),
    # homeCommunityId
    (dt.check_home_community_id, "1.2.3", "must start with 'urn:oid:'"),
    (dt.check_home_community_id, "urn:oid:1.02", "leading zeros"),
    # DocumentEntry.uniqueId
    (dt.check_document_unique_id, "", "empty"),
    (dt.check_document_unique_id, "1.2.3^", "extension after '^' is empty"),
    (dt.check_document_unique_id, "1.2.3^" + "x" * 17, "maximum is 16"),
    (dt.check_document_unique_id, "abc^123", "uniqueId root"),
    (dt.check_document_unique_id, "1.2.3^a^b", "must not contain '^'"),
    (dt.check_document_unique_id, "1." + "2" * 70, "maximum is 64"),
    (dt.check_document_unique_id, "1.2.3^a&b", "must not contain"),
    # SubmissionSet / Folder uniqueId
    (dt.check_registry_package_unique_id, "1.2.3^ext", "plain OID"),
    (dt.check_registry_package_unique_id, "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1", "uniqueId"),
    # DTM
    (dt.check_dtm, "", "empty"),
    (dt.check_dtm, "20230229", "day 29"),  # not a leap year
    (dt.check_dtm, "19000229", "day 29"),  # divisible by 100, not 400
    (dt.check_dtm, "20240230", "day 30"),
    (dt.check_dtm, "20240431", "day 31"),
    (dt.check_dtm, "20240100", "day 00"),
    (dt.check_dtm, "200613", "month 13"),
    (dt.check_dtm, "200600", "month 00"),
    (dt.check_dtm, "2006122424", "hour 24"),
    (dt.check_dtm, "200612231260", "minute 60"),
    (dt.check_dtm, "20061223120060", "second 60"),
    (dt.check_dtm, "200", "4, 6, 8, 10, 12 or 14"),
    (dt.check_dtm, "20061", "4, 6, 8, 10, 12 or 14"),
    (dt.check_dtm, "200612231", "4, 6, 8, 10, 12 or 14"),
    (dt.check_dtm, "200612231200001", "4, 6, 8, 10, 12 or 14"),
    (dt.check_dtm, "20061223120000+0100", "time zone"),
    (dt.check_dtm, "200612231200-0500", "time zone"),
    (dt.check_dtm, "20061223120000Z", "time zone"),
    (dt.check_dtm, "20061223120000.123", "fractional seconds"),
    (dt.check_dtm, "2006-12-24", "digits only"),
    (dt.check_dtm, "2006122 ", "digits only"),
    (dt.check_dtm, "２００６", "digits only"),  # full-width digits are not ASCII digits
    # hash / size
    (dt.check_hash, "e543712c0e10501972de13a5bfcbe826c49feb7", "40 hexadecimal"),
    (dt.check_hash, "e543712c0e10501972de13a5bfcbe826c49feb750", "40 hexadecimal"),
    (dt.check_hash, "g543712c0e10501972de13a5bfcbe826c49feb75", "40 hexadecimal"),
    (dt.check_hash, "", "40 hexadecimal"),
    (dt.check_size, "", "non-negative integer"),
    (dt.check_size, "-1", "non-negative integer"),
    (dt.check_size, "+1", "non-negative integer"),
    (dt.check_size, "1.5", "non-negative integer"),
    (dt.check_size, "1e3", "non-negative integer"),
    (dt.check_size, " 36", "non-negative integer"),
    # mimeType
    (dt.check_mime_type, "text/plain; charset=UTF-8", "parameters"),
    (dt.check_mime_type, "text", "type/subtype"),
    (dt.check_mime_type, "text/", "type/subtype"),
    (dt.check_mime_type, "/plain", "type/subtype"),
    (dt.check_mime_type, "text/plain/x", "type/subtype"),
    (dt.check_mime_type, "text /plain", "type/subtype"),
    (dt.check_mime_type, "", "type/subtype"),
    # languageCode
    (dt.check_language_code, "", "RFC 3066"),
    (dt.check_language_code, "en_US", "RFC 3066"),
    (dt.check_language_code, "en-", "RFC 3066"),
    (dt.check_language_code, "123", "RFC 3066"),
    (dt.check_language_code, "englishlang-us", "RFC 3066"),  # primary subtag > 8
    (dt.check_language_code, "en us", "RFC 3066"),
    # ISO HD
    (dt.check_iso_hd, "", "empty"),
    (dt.check_iso_hd, "NS&1.2.3&ISO", "namespace"),
    (dt.check_iso_hd, "&1.2.3&DNS", "must be 'ISO'"),
    (dt.check_iso_hd, "&1.2.3", "must be 'ISO'"),
    (dt.check_iso_hd, "&&ISO", "universal ID is missing"),
    (dt.check_iso_hd, "&abc&ISO", "universal ID: OID"),
    (dt.check_iso_hd, "&1.2.3&ISO&x", "subcomponents"),
    # CX
    (dt.check_cx, "", "empty"),
    (dt.check_cx, "&1.2.3&ISO", "component 1 (ID number) is required"),  # no id, no '^'
    (dt.check_cx, "^^^&1.2.3&ISO", "component 1 (ID number) is required"),
    (dt.check_cx, "abc^^^&1.2.3&ISO^PI", "component 5 must be empty"),
    (dt.check_cx, "abc^^^&1.2.3&ISO^^&1.2.4&ISO", "component 6 must be empty"),
    (dt.check_cx, "abc^1^^&1.2.3&ISO", "component 2 (check digit)"),
    (dt.check_cx, "abc^^M11^&1.2.3&ISO", "component 3 (check digit scheme)"),
    (dt.check_cx, "abc", "component 4 (assigning authority) is required"),
    (dt.check_cx, "abc^^^", "component 4 (assigning authority) is required"),
    (dt.check_cx, "abc^^^NS&1.2.3&ISO", "must not have a namespace ID"),
    (dt.check_cx, "abc^^^NS", "must not have a namespace ID"),
    (dt.check_cx, "abc^^^&1.2.3&L", "universal ID type must be 'ISO'"),
    (dt.check_cx, "abc^^^&1.2.3&iso", "universal ID type must be 'ISO'"),
    (dt.check_cx, "abc^^^&1.2.3", "universal ID type must be 'ISO'"),
    (dt.check_cx, "abc^^^&&ISO", "universal ID is missing"),
    (dt.check_cx, "abc^^^&1.2.x&ISO", "dot-separated"),
    (dt.check_cx, "abc^^^&urn:oid:1.2.3&ISO", "dot-separated"),
    (dt.check_cx, "a&b^^^&1.2.3&ISO", "must not contain subcomponents"),
    (dt.check_cx, "abc^^^&1.2.3&ISO~def^^^&1.2.3&ISO", "repetitions"),
    (dt.check_cx, " abc^^^&1.2.3&ISO", "whitespace"),
    (dt.check_cx, "abc^^^&1.2.3&ISO ", "whitespace"),
    # CXi
    (dt.check_cxi, "", "empty"),
    (dt.check_cxi, "11379^^^", "component 5 (identifier type code) is required"),
    (dt.check_cxi, "11379^^^&1.3.6367.3.7&ISO^^^", "component 5 (identifier type code) is required"),
    (dt.check_cxi, "^^^&1.3.6367.3.7&ISO^urn:ihe:iti:xds:2013:uniqueId^^^", "component 1 (ID number)"),
    (dt.check_cxi, "11379^^^&1.3.6367.3.7&^urn:ihe:iti:xds:2013:uniqueId", "both universal ID"),
    (dt.check_cxi, "11379^^^&&ISO^urn:ihe:iti:xds:2013:uniqueId", "both universal ID"),
    (dt.check_cxi, "11379^^^&1.3.x&ISO^urn:ihe:iti:xds:2013:uniqueId", "universal ID: OID"),
    (dt.check_cxi, "11379^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:uniqueId^wrong", "component 6"),
    (dt.check_cxi, "11379^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:uniqueId^&1.2.3.4&KRYSO", "must be 'ISO'"),
    (dt.check_cxi, "11379^1^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession", "component 2 must be empty"),
    (dt.check_cxi, "11379^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:accession^^20200101", "component 7"),
    (dt.check_cxi, "11379^^^&1.2.3&ISO^a&b", "component 5 (identifier type code) must not"),
    # XCN
    (dt.check_xcn, "", "empty"),
    (dt.check_xcn, "^^Gerald", "component 1 (ID number) or component 2 (family name)"),
    (dt.check_xcn, "^&van^Gerald", "component 1 (ID number) or component 2 (family name)"),
    (dt.check_xcn, "^^^^^", "component 1 (ID number) or component 2 (family name)"),
    (dt.check_xcn, "11375^Welby^^^^^^^NS&1.2.3&ISO", "component 9 (assigning authority) must not have"),
    (dt.check_xcn, "11375^Welby^^^^^^^&1.2.3&L", "component 9 (assigning authority) universal ID type"),
    (dt.check_xcn, "11375^Welby^^^^^^^&1.2.3", "component 9 (assigning authority) universal ID type"),
    (dt.check_xcn, "11375^Welby^^^^^^^ABC", "component 9 (assigning authority) must not have"),
    (dt.check_xcn, "11375^^^^^^^^&abc&ISO", "universal ID: OID"),
    (dt.check_xcn, "^Smitty~^Welby", "repetitions"),
    (dt.check_xcn, "a&b^Welby", "component 1 (ID number) must not contain"),
    (dt.check_xcn, "^Welby" + "^x" * 23, "23"),
    # XON
    (dt.check_xon, "", "empty"),
    (dt.check_xon, "^^^^^&1.2.3.4.5.6.7.8.9.1789&ISO^^^^45", "component 1 (organization name) is required"),
    (dt.check_xon, "Some Hospital^^^^^&1.2.3.4.5.6.7.8.9.1789^^^^45", "universal ID type must be 'ISO'"),
    (dt.check_xon, "Some Hospital^^^^^&1.2.3.4.5.6.7.8.9.1789&LOL^^^^45", "universal ID type must be 'ISO'"),
    (dt.check_xon, "Some Hospital^^^^^&LOL&ISO^^^^45", "universal ID: OID"),
    (dt.check_xon, "Some Hospital^^^^^LOL&1.2.3.4.5.6.7.8.9.1789&ISO^^^^45", "namespace"),
    (dt.check_xon, "Some Hospital^^^^^^^^^LOL", "component 10 (organization identifier) must be an OID"),
    (dt.check_xon, "Some Hospital^^^^^^^^^45", "component 10 (organization identifier) must be an OID"),
    (dt.check_xon, "Some Hospital^1.2", "component 2 must be empty"),
    (dt.check_xon, "Some Hospital^^LOL", "component 3 must be empty"),
    (dt.check_xon, "Some Hospital^^^1.2", "component 4 must be empty"),
    (dt.check_xon, "Some Hospital^^^^1.2", "component 5 must be empty"),
    (dt.check_xon, "Some Hospital^^^^^^1.2", "component 7 must be empty"),
    (dt.check_xon, "Some Hospital^^^^^^^1.2", "component 8 must be empty"),
    (dt.check_xon, "Some Hospital^^^^^^^^1.2", "component 9 must be empty"),
    (dt.check_xon, "Some Hospital^^^^^^^^^^1.2", "component 11 must be empty"),
    (dt.check_xon, "Some Hospital^^^^^&1.2&ISO^^^^a&b", "must not contain subcomponents"),
    (dt.check_xon, "Cleveland Clinic~Parma Community", "repetitions"),
    # XTN
    (dt.check_xtn, "", "empty"),
    (dt.check_xtn, "^^^", "component 3 (telecommunication equipment type) is required"),
    (dt.check_xtn, "^^Internet^", "component 4 (communication address) is required"),
    (dt.check_xtn, "^^Internet^not-an-email", "not an e-mail address"),
    (dt.check_xtn, "^^Floppynet^blabla", "'Floppynet' is not one of"),
    (dt.check_xtn, "^^internet^a@x.ua", "'internet' is not one of"),
    (dt.check_xtn, "^^Internet^a@x.ua^12345", "component 5 (telephone number part) must be empty"),
    (dt.check_xtn, "^^Internet^^11^22^33^44", "component 4 (communication address) is required"),
    (dt.check_xtn, "^^Internet^a@x.ua^^^^^^^^8 (0622) 90-66-83", "component 12"),
    (dt.check_xtn, "^WPN^Internet^a@x.ua", "must be 'NET'"),
    (dt.check_xtn, "^NET^PH^^11^22^33^44", "'NET' is only for network addresses"),
    (dt.check_xtn, "^^PH^^^^^^55^^^", "requires a number in component 7"),
    (dt.check_xtn, "^^CP^^11^22^^44", "requires a number in component 7"),
    (dt.check_xtn, "^^FX", "requires a number in component 7"),
    (dt.check_xtn, "^^PH^abc@de.com^11^22^33^44", "component 4 (communication address) must be empty"),
    (dt.check_xtn, "^PRN^CP^^^^111^^^^^222^^^", "must not value both"),
    (dt.check_xtn, "^XYZ^PH^^^^33", "not in HL7 table 0201"),
    (dt.check_xtn, "^^PH^^^^33^^^^^^1", "13 components"),
    # sourcePatientInfo
    (dt.check_source_patient_info, "", "must have the form"),
    (dt.check_source_patient_info, "PID-3", "must have the form"),
    (dt.check_source_patient_info, "PID3|x", "must have the form"),
    (dt.check_source_patient_info, "pid-3|x", "must have the form"),
    (dt.check_source_patient_info, "PID-0|x", "must have the form"),
    (dt.check_source_patient_info, "PID-03|x", "must have the form"),
    (dt.check_source_patient_info, "PID-2|123", "PID-2 (deprecated"),
    (dt.check_source_patient_info, "PID-4|123", "PID-4 (deprecated"),
    (dt.check_source_patient_info, "PID-12|US", "PID-12 (deprecated"),
    (dt.check_source_patient_info, "PID-19|123-45-6789", "PID-19 (deprecated"),
    (dt.check_source_patient_info, "PID-40|x", "does not exist"),
    (dt.check_source_patient_info, "PID-7|1956-05-27", "PID-7 (date of birth)"),
    (dt.check_source_patient_info, "PID-7|19560230", "day 30"),
    (dt.check_source_patient_info, "PID-7|19560527120000+0100", "time zone"),
    (dt.check_source_patient_info, "PID-8|X", "PID-8 (sex) 'X'"),
    (dt.check_source_patient_info, "PID-8|m", "PID-8 (sex) 'm'"),
    (dt.check_source_patient_info, "PID-8|Male", "PID-8 (sex)"),
    # intendedRecipient
    (dt.check_intended_recipient, "", "empty"),
    (dt.check_intended_recipient, "|", "needs an organization"),
    (dt.check_intended_recipient, "||", "needs an organization"),
    (dt.check_intended_recipient, "a|b|c|d", "at most 3"),
    (dt.check_intended_recipient, "^^^^^&1.2.3&ISO|", "XON part: XON component 1"),
    (dt.check_intended_recipient, "Some Hospital^^^^^&1.2.3&ISO^^^^45|^^Marcus", "XCN part"),
    (dt.check_intended_recipient, "||^^Internet^", "XTN part"),
    (dt.check_intended_recipient, "Some Hospital^^^^^^^^^45|", "XON part"),
]


@pytest.mark.parametrize(
    ("check", "value"),
    VALID,
    ids=[f"{check.__name__}:{value!r}" for check, value in VALID],
)
def test_valid(check: Check, value: str) -> None:
    assert check(value) is None


@pytest.mark.parametrize(
    ("check", "value", "reason"),
    INVALID,
    ids=[f"{check.__name__}:{value!r}" for check, value, _ in INVALID],
)
def test_invalid(check: Check, value: str, reason: str) -> None:
    problem = check(value)
    assert problem is not None, f"{value!r} should be rejected"
    assert reason in problem


def test_cx_missing_id_message_is_exact() -> None:
    assert dt.check_cx("&1.2.3&ISO") == "CX component 1 (ID number) is required"


def test_cx_extra_component_message_names_the_component() -> None:
    assert dt.check_cx("abc^^^&1.2.3&ISO^PI") == (
        "CX component 5 must be empty: a patient id may only have components 1 (ID) and 4"
    )


# --- parsers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("89765a87b^^^&1.2.3.45.4.3.2.1&ISO", "89765a87b^^^&1.2.3.45.4.3.2.1&ISO"),
        ("  89765a87b^^^&1.2.3&ISO\n", "89765a87b^^^&1.2.3&ISO"),
        ("89765a87b^^^DMP&1.2.3&ISO", "89765a87b^^^&1.2.3&ISO"),
        ("89765a87b^^^&1.2.3&ISO^^", "89765a87b^^^&1.2.3&ISO"),
        ("1234567890123^^^&1.2.250.1.213.1.4.10&ISO", "1234567890123^^^&1.2.250.1.213.1.4.10&ISO"),
    ],
)
def test_normalize_cx(value: str, expected: str) -> None:
    assert dt.normalize_cx(value) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("&1.2.3&ISO", "component 1 (ID number) is required"),
        ("abc^^^&1.2.3&ISO^PI", "component 5 must be empty"),
        ("abc^^^DMP", "universal ID is missing"),
        ("abc^^^DMP&1.2.3&L", "must be 'ISO'"),
        ("abc", "component 4 (assigning authority) is required"),
    ],
)
def test_normalize_cx_rejects(value: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        dt.normalize_cx(value)


def test_parse_cx_fields() -> None:
    cx = dt.parse_cx(" pid1^^^NS&1.2.3&ISO ")
    assert cx.id == "pid1"
    assert cx.assigning_authority_oid == "1.2.3"
    assert cx.raw == " pid1^^^NS&1.2.3&ISO "
    assert str(cx) == "pid1^^^&1.2.3&ISO"


def test_parse_cx_is_lenient_only_about_namespace() -> None:
    # check_cx (used at submission) stays strict even though the parser accepts the namespace.
    assert dt.check_cx("pid1^^^NS&1.2.3&ISO") is not None
    assert dt.parse_cx("pid1^^^NS&1.2.3&ISO").assigning_authority_oid == "1.2.3"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("^Smitty^Gerald^^^", ("", "Smitty", "Gerald", None)),
        ("^Dopplemeyer^Sherry^^^", ("", "Dopplemeyer", "Sherry", None)),
        ("^Welby", ("", "Welby", "", None)),
        ("11375", ("11375", "", "", None)),
        (
            "11375^Welby^Marcus^J^Jr. MD^Dr^MD^^&1.2.840.113619.6.197&ISO",
            ("11375", "Welby", "Marcus", "1.2.840.113619.6.197"),
        ),
        ("^van&der&Berg^Jan", ("", "van", "Jan", None)),
    ],
)
def test_parse_xcn(value: str, expected: tuple[str, str, str, str | None]) -> None:
    xcn = dt.parse_xcn(value)
    assert (xcn.id, xcn.family, xcn.given, xcn.assigning_authority_oid) == expected
    assert xcn.raw == value


@pytest.mark.parametrize("value", ["", "^^Gerald", "11375^^^^^^^^NS&1.2.3&ISO"])
def test_parse_xcn_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        dt.parse_xcn(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2005", "20050101000000"),
        ("200512", "20051201000000"),
        ("20061224", "20061224000000"),
        ("2006122408", "20061224080000"),
        ("200612230800", "20061223080000"),
        ("20041225235050", "20041225235050"),
        ("20240229", "20240229000000"),
    ],
)
def test_dtm_to_key(value: str, expected: str) -> None:
    assert dt.dtm_to_key(value) == expected


@pytest.mark.parametrize("value", ["", "200", "20230229", "20061224+0100", "2006-12-24"])
def test_dtm_to_key_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        dt.dtm_to_key(value)


def test_dtm_keys_sort_chronologically() -> None:
    values = ["20061224", "2005", "200612230800", "20061223", "20041225235050", "2006"]
    keys = sorted(dt.dtm_to_key(v) for v in values)
    assert keys == [
        "20041225235050",
        "20050101000000",
        "20060101000000",
        "20061223000000",
        "20061223080000",
        "20061224000000",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("E543712C0E10501972DE13A5BFCBE826C49FEB75", "e543712c0e10501972de13a5bfcbe826c49feb75"),
        ("e543712c0e10501972de13a5bfcbe826c49feb75", "e543712c0e10501972de13a5bfcbe826c49feb75"),
    ],
)
def test_normalize_hash(value: str, expected: str) -> None:
    assert dt.normalize_hash(value) == expected
    assert dt.check_hash(dt.normalize_hash(value)) is None
