"""Services: the glue between the ledger's rows, the pure policy engine and the providers.
(Above ``ledger``, ``policy`` and ``providers``, below ``web`` and ``worker``.)"""
