"""Registry of rule-file sections: name -> :class:`~crmtool.section.Section`.

Adding a section: declare a :class:`~crmtool.section.Section` beside its schema in the feature
that owns it, plus one line here. The loader (:mod:`crmtool.rulefile`) knows sections only
through :data:`SECTIONS`; importing this registry imports the schema modules, never the parsers.
"""

from __future__ import annotations

from crmtool.dedupe.schema import DEDUPE_SECTION
from crmtool.privacy.schemas import CONSENT_SECTION, RETENTION_SECTION
from crmtool.section import Section

#: in the order their parsers run when every section is checked (``rules lint``)
SECTIONS: dict[str, Section] = {
    section.name: section
    for section in (DEDUPE_SECTION, CONSENT_SECTION, RETENTION_SECTION)
}
