"""Data protection: consent, suppression lists, erasure, retention, pseudonymised exports.

Personal data kept for history (suppressions, erasures) is stored only as keyed tokens
(``crm_token`` in SQL, :meth:`crmtool.keys.KeyedHasher.token` in Python) of the normalised value.

Modules (each usable from Python; the CLI in :mod:`crmtool.cli.privacy_cmd` is a thin layer):

* :mod:`~crmtool.privacy.consent` - the ``consent`` rule-file section, ``normalise_consent_sql``
* :mod:`~crmtool.privacy.identity` - identifier normalisation, tokens, the privacy tables
* :mod:`~crmtool.privacy.suppress` - ``import_suppressions`` (unsubscribe, complaint, do_not_contact)
* :mod:`~crmtool.privacy.erase` - ``erase``, ``check_erasures``, ``drop_erased``, ``compact_workspace_file``
* :mod:`~crmtool.privacy.mailable` - ``mailable_table``, ``add_mailable_column``, ``mailable_for_ruleset``
* :mod:`~crmtool.privacy.retention` - the ``retention`` section, ``apply_retention``
* :mod:`~crmtool.privacy.export` - ``export`` by a YAML policy (keep, drop, hash, mask, generalise)
* :mod:`~crmtool.privacy.schemas` - JSON Schemas of the sections and of policies (no crmtool imports)
"""
