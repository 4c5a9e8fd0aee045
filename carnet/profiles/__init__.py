"""CI-SIS and DMP profiles: the ANS value sets and maps (profiles/ data), the `ihe` / `dmp`
validation profiles of submissions, CDA header -> XDS metadata, and CDA validation.

Other submission paths call ``carnet.profiles.validation.check_profile`` after the XDS.b checks.
"""
