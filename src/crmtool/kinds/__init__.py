"""Registry of rule kinds: name -> implementation. Adding a kind: one module plus one line here."""

from __future__ import annotations

from crmtool.kinds.allowed import Allowed
from crmtool.kinds.base import Kind
from crmtool.kinds.case import Case
from crmtool.kinds.date import Date
from crmtool.kinds.decimal import Decimal
from crmtool.kinds.email import Email
from crmtool.kinds.email_normalise import EmailNormalise
from crmtool.kinds.email_risk import EmailRisk
from crmtool.kinds.mojibake import Mojibake
from crmtool.kinds.national_id import NationalId
from crmtool.kinds.numeric_range import NumericRange
from crmtool.kinds.phone import Phone
from crmtool.kinds.postal_code import PostalCode
from crmtool.kinds.regex import Regex
from crmtool.kinds.required import Required
from crmtool.kinds.sql import Sql
from crmtool.kinds.trim import Trim
from crmtool.kinds.unicode_nfc import UnicodeNfc
from crmtool.kinds.unique import Unique

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Trim(), Case(), UnicodeNfc(), Mojibake(), EmailNormalise(), Decimal(), Date(), Phone(),
        Required(), Regex(), Allowed(), NumericRange(), Email(), PostalCode(), NationalId(), Unique(), Sql(),
        EmailRisk(),
    )
}
