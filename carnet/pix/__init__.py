"""ITI-8 Patient Identity Feed: HL7 v2 ADT messages over MLLP that make patients known to the registry."""
