"""Request and response models of ``/api/v1``, one module per resource. The OpenAPI document
(``bridge/web/openapi.py``) is generated from them; the views validate with them."""
