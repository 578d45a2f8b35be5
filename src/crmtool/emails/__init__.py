"""Email address classification: syntax, risk reasons, MX, bounces.

Every distinct address gets a ``status`` (``valid``, ``risky``, ``unknown``, ``invalid``), a list
of ``reasons``, a ``suggestion``, a ``risk`` score 0-100 and ``tags`` (``free_provider`` /
``corporate``). The checks and their sources of truth:

==========================  ======================================================================
reason                      check (module) and source of truth
==========================  ======================================================================
``syntax:<detail>``         email-validator, no network, internationalised addresses allowed; a
                            SQL fast path for plain ASCII addresses gives the identical result
                            (:mod:`.syntax`, hypothesis-tested against email-validator)
``bad_tld``                 TLD not delegated: ICANN section of the Public Suffix List
                            (``data/emails_tlds.txt``, from the ``publicsuffixlist`` package)
``disposable``              ``disposable-email-domains`` package + ``rules/lists/disposable_extra.txt``,
                            subdomains included (:mod:`.lists`)
``role``                    multilingual ``rules/lists/role_accounts.txt`` (built-in copy in ``data``)
``typo_domain``             OSA distance to the consumer providers of ``data/emails_providers.txt``,
                            TLD slips (``.con``, ``.cmo``), allow-list (:mod:`.typos`)
``random_local``            documented score: consonant runs, vowel share, letter/digit switches,
                            entropy (:mod:`.randomness`)
``homoglyph``,              Unicode TR39 confusables and scripts via ``confusable-homoglyphs``;
``mixed_script``            punycode is decoded first (:mod:`.homoglyph`)
``no_mx``,                  opt-in DNS with dnspython: MX, RFC 5321 A/AAAA fallback, RFC 7505 null
``domain_not_found``,       MX; concurrent with per-query timeout and total budget; answers cached
``dns_timeout``             in ``email_mx_cache`` for their TTL (:mod:`.mx`)
``hard_bounced``,           bounce exports of mailchimp, sendgrid, brevo, mailgun, ses or a generic
``soft_bounced_repeatedly`` CSV in ``email_bounces`` (keyed tokens) (:mod:`.bounces`)
``suppressed``              complaints, and ``privacy_suppressions`` (channel ``email``)
==========================  ======================================================================

Status: ``invalid`` for syntax, bad_tld, domain_not_found, no_mx, hard_bounced; ``risky`` for the
other reasons except dns_timeout, which alone gives ``unknown``. Entry points:
:func:`.classify.classify_values` (SQL in, temp table out), :func:`.run.classify_file`
(``crmtool emails``), :func:`.bounces.import_bounces` (``crmtool bounces import``), and the
``email_risk`` rule kind.
"""
