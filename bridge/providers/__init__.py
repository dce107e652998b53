"""The payment providers behind one seam.

``base.Provider`` is the protocol every provider implements; ``registry`` maps a name to its
implementation and is the only importer of the provider packages (``stripe/``, ``paddle/``,
each the only user of its SDK; enforced in ``.importlinter``). Shared by all providers:
``outcomes`` (neutral results and errors), ``retry`` (the one retry layer), ``signatures``
(the HMAC webhook scheme), ``payload_errors`` (typed reads of payloads), ``config``.
"""
