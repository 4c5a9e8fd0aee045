"""INS, the French national health identifier, as the DMP requires it in patientId.

The INS is the NIR (social security number) or, while it is not known, the NIA (temporary
number), under the assigning authority 1.2.250.1.213.1.4.8 (NIR), .9 (NIA), .10 (NIR of test
identities) or .11 (NIR of demonstration identities). A NIR is 13 characters (sex, year, month,
département, commune, order; Corsica writes its département 2A or 2B) and a two-digit key:
97 - (the 13 characters read as a number, 2A as 19 and 2B as 18) mod 97.
"""

from __future__ import annotations

import re

_NIR = re.compile(r"[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{6}[0-9]{2}")


def nir_key(first13: str) -> int:
    """The key of a NIR's first 13 characters."""
    digits = first13.replace("2A", "19").replace("2B", "18")
    return 97 - int(digits) % 97


def check_nir(value: str, *, key: bool = True) -> str | None:
    """None when ``value`` is a 15-character NIR (with a correct key if ``key``), else why not."""
    if len(value) != 15:
        return f"an INS is 15 characters (13 and a 2-digit key), not {len(value)}"
    if not _NIR.fullmatch(value):
        return "an INS is made of digits (the département may be 2A or 2B)"
    if key:
        expected = nir_key(value[:13])
        if int(value[13:]) != expected:
            return f"the key {value[13:]} is wrong (expected {expected:02d})"
    return None
