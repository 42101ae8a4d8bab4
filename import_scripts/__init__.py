"""Catalog managers' commands, and nothing else: `kgqa import` (cli.py, a shell around
kg/loader.py) and `kgqa sample` (sample_store.py, the sample store generator). Reading and
validating catalog files is the graph side's (kg/catalog/); no other package imports this one."""
