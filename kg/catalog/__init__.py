"""Catalog files and the catalog's product rules, shared by the command line (import_scripts/) and
the HTTP API (api/catalog.py): `reader.py` reads the import files of DESIGN section 3 as streams,
`validation.py` turns each row into graph values, `service.py` holds the single-product rules
(replace, patch, discontinue, remove). kg/loader.py writes what they validated."""
