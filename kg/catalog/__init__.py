"""Catalog files, shared by the command line (import_scripts/) and the HTTP API (api/): `reader.py`
reads the import files of DESIGN section 3 as streams, `validation.py` turns each row into graph
values. kg/loader.py writes what they validated."""
