"""Data protection: consent, suppression lists, erasure, retention, pseudonymised exports.

Personal data kept for history (suppressions, erasures) is stored only as keyed tokens
(``crm_token`` in SQL, :meth:`crmtool.keys.KeyedHasher.token` in Python) of the normalised value.
"""
